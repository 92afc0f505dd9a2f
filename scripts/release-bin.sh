# Sourced by build-deb.sh and build-plugin.sh: their shared arguments
# `[--bin PATH] [OUT]`, and the release binary (built when missing).
#   release_args NAME DEFAULT_OUT HELP_LINES "$@"   sets BIN and OUT
release_args() {
    local name=$1 default_out=$2 help=$3
    shift 3
    BIN=
    OUT=
    while (($#)); do
        case $1 in
            --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
            -h|--help) sed -n "$help" "$0"; exit 0 ;;
            -*) echo "$name: unknown option $1" >&2; exit 2 ;;
            *) OUT=$1; shift ;;
        esac
    done
    OUT=${OUT:-$default_out}
    if [ -z "$BIN" ]; then
        BIN=$ROOT/target/release/switchyard
        [ -x "$BIN" ] || cargo build --release -p switchyard
    fi
    [ -x "$BIN" ] || { echo "$name: $BIN is not an executable" >&2; exit 1; }
}
