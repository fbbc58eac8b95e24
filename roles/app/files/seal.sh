#!/bin/sh
# Run as root once a release is built, as
#   sh -c "$(cat seal.sh)" seal BUILDER RELEASE SHARED PATH...
# Nothing the build started outlives it; the release becomes root's and
# read-only to everyone else (links are changed themselves, never followed,
# and chown clears set-id bits); each shared PATH is replaced with a link to
# SHARED (the paths were checked to stay inside the release).
set -e
builder=$1 release=$2 shared=$3
shift 3
pkill --signal KILL --uid "$builder" || [ $? -eq 1 ]
chown -R --no-dereference root:root "$release"
chmod -R go-w,u-s,g-s "$release"
for path; do
  rm -rf -- "${release:?}/$path"
  mkdir -p -- "$(dirname -- "$release/$path")"
  ln -s -- "$shared/$path" "$release/$path"
done
