#!/bin/sh
# Every container of the image starts here, then runs its command.
# - An empty data volume gets the repository's prompt suites (existing files are never replaced).
# - With BENCH_INSTANCE set (docker-compose.yaml sets postgres), $DAGSTER_HOME/dagster.yaml is rendered
#   from the repository's one template: DAGSTER_PG_* as env: references, never the password. Without it
#   the instance config is someone else's (Dagster's Helm chart mounts its own) and is left alone.
set -eu
mkdir -p "$BENCH_DATA_DIR/models" "$BENCH_DATA_DIR/prompts"
for suite in /opt/bench/seed/prompts/*; do
    [ -e "$BENCH_DATA_DIR/prompts/${suite##*/}" ] || cp "$suite" "$BENCH_DATA_DIR/prompts/"
done
if [ -n "${BENCH_INSTANCE:-}" ]; then
    bench instance-config --template /opt/bench/dagster.yaml
fi
exec "$@"
