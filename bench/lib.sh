# Shared by the bench scripts (sourced, not run). The caller defines log, die,
# need_pkgs (prints the Debian packages still missing, one per line) and INSTALL.

# Installs what need_pkgs reports missing with apt-get, or fails naming it.
install_tools() {
    local missing
    missing="$(need_pkgs)"
    if [ -z "$missing" ]; then return; fi
    [ "$INSTALL" = 1 ] || die "missing tools: $(echo $missing) (run without --no-install)"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    command -v apt-get >/dev/null || die "no apt-get; install by hand: $(echo $missing)"
    log "installing: $(echo $missing)"
    $sudo apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
    missing="$(need_pkgs)"
    [ -z "$missing" ] || die "still missing after apt-get: $(echo $missing)"
}

# perf is optional (profiles fall back to strace alone): installed on a best-effort basis.
install_perf() {
    if ! command -v perf >/dev/null && [ "$INSTALL" = 1 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null 2>&1 || true
    fi
}

# Writes $1/nginx.conf (and creates $1/logs, $1/tmp) for a temporary nginx:
# one master, one worker per core, no access log, sendfile, every temporary
# path inside $1. Standard input is added inside the `http {}` block: the
# caller's own directives and servers.
write_nginx_conf() {
    local d="$1"
    mkdir -p "$d/logs" "$d/tmp"
    {
        [ "$(id -u)" = 0 ] && echo "user root;"
        cat <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
EOF
        cat
        echo "}"
    } >"$d/nginx.conf"
}
