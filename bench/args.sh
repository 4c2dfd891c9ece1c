# Argument checks shared by the benchmark scripts; source it after setting
# `usage` (one line). Each check ends the script with a one-line error and
# exit 2.

# help_if_asked ARGS...: prints the usage and exits 0 on --help or -h.
help_if_asked() {
  for a in "$@"; do
    case $a in
      --help | -h) echo "$usage"; exit 0 ;;
    esac
  done
}

usage_error() {
  echo "error: $1 ($usage)" >&2
  exit 2
}

# need_program PATH: PATH must be a program of a build.
need_program() {
  [ -x "$1" ] || usage_error "$1: no such program; build first (cmake --build BUILD_DIR) or name the build directory"
}

# need_count NAME VALUE: VALUE must be a whole number from 1 to 1000000.
need_count() {
  case $2 in
    '' | *[!0-9]* | 0*) usage_error "$1: '$2' is no number from 1 to 1000000" ;;
  esac
  [ "${#2}" -le 7 ] && [ "$2" -le 1000000 ] ||
    usage_error "$1: '$2' is no number from 1 to 1000000"
}
