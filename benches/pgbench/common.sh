# What the pgbench scripts share (sourced by calls.sh, batch.sh and run.sh,
# from this directory, with PGHOST and PGUSER set).

# Drops and creates database $1, migrates it as the store migrates it
# (calling before_migration with each file's name first, when the sourcing
# script defines it), loads fixture.sql and any further SQL files given
# after the name, then vacuums and analyzes it.
fresh_database() {
    local db=$1 migration extra
    shift
    psql -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    for migration in ../../commerce-postgres/migrations/*.sql; do
        if declare -F before_migration >/dev/null; then
            before_migration "$db" "$(basename "$migration")"
        fi
        psql -q -v ON_ERROR_STOP=1 -d "$db" -f "$migration" >/dev/null
    done
    psql -q -v ON_ERROR_STOP=1 -d "$db" -f fixture.sql
    for extra in "$@"; do
        psql -q -v ON_ERROR_STOP=1 -d "$db" -f "$extra"
    done
    psql -q -v ON_ERROR_STOP=1 -d "$db" -c "VACUUM ANALYZE"
}

# The busy time of the machine (every field of /proc/stat's cpu line but
# idle and iowait), in clock ticks.
busy() {
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# Runs the pgbench script $2 on database $1, $3 calls from each of $4
# clients, and prints the calls a second and the machine's busy CPU time
# per call.
calls_and_busy_time() {
    local db=$1 script=$2 calls=$3 clients=$4 before after tps
    before=$(busy)
    tps=$(pgbench -n -M prepared -U commerce_pgbench -t "$calls" -c "$clients" -j "$clients" \
        -f "$script" "$db" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    after=$(busy)
    echo "${tps%.*} calls a second, $(( (after - before) * 1000000 / $(getconf CLK_TCK) / (calls * clients) )) µs busy per call"
}
