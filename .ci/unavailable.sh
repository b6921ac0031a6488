# Sourced by the scripts that print the address of a service for the tests. They set `service`
# first; `fail REASON` then says why it is unavailable and prints "unavailable" for the caller
# to skip those tests, or, under CI, fails the run.
fail() {
  echo "$service unavailable: $1" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo unavailable
  exit 0
}
