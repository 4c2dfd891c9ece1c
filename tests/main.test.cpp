#define BOOST_TEST_MODULE dml
#include <boost/test/unit_test.hpp>
