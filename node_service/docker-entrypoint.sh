#!/bin/sh
# Railway and compose mount the session volume owned by root, while the server runs as the unprivileged
# "node" user (uid 1000) of the base image. Started as root (the image's default): make the session folder
# (AUTH_ROOT) belong to uid 1000, then drop root for good. Started as any other user (docker run --user,
# RAILWAY_RUN_UID): just run the command, there is nothing it could chown.
set -eu
if [ "$(id -u)" = 0 ]; then
  auth_root=${AUTH_ROOT:-/data/auth}
  mkdir -p "$auth_root"
  # Only what uid 1000 does not own yet, so a large session folder is not rewritten on every start;
  # -h: a symbolic link in the volume changes itself, never what it points to.
  find "$auth_root" \! -user 1000 -exec chown -h 1000:1000 {} +
  exec setpriv --reuid=1000 --regid=1000 --clear-groups -- "$@"
fi
exec "$@"
