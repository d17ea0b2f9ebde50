"""Command line: ``python -m flask_service {migrate|serve|create-user}``."""

from __future__ import annotations

import argparse
import logging
import socket
import sys

from . import ConfigError, create_app
from .config import redact_url
from .resolver import is_valid_tenant_id

log = logging.getLogger("flask_service")


def _fail(message: str, code: int = 2) -> int:
    print(f"flask_service: error: {message}", file=sys.stderr)
    return code


def cmd_migrate(_args: argparse.Namespace) -> int:
    from flask_migrate import upgrade

    app = create_app(require_secret=False)
    log.info("applying migrations to %s", redact_url(app.config["SQLALCHEMY_DATABASE_URI"]))
    with app.app_context():
        upgrade()
    log.info("database is up to date")
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from .models import User, db

    username = args.username.strip()
    if not username or len(username) > 80:
        return _fail("--username must be 1 to 80 characters")
    if not args.password:
        return _fail("--password must not be empty")
    if not is_valid_tenant_id(args.tenant):
        return _fail(f"--tenant {args.tenant!r} does not match ^[A-Za-z0-9_-]{{1,64}}$")
    app = create_app(require_secret=False)
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        created = user is None
        if user is None:
            user = User(username=username, tenant_id=args.tenant)
            db.session.add(user)
        user.tenant_id = args.tenant
        user.set_password(args.password)
        db.session.commit()
    print(f"{'created' if created else 'updated'} user {username!r} (tenant {args.tenant})")
    return 0


def _listen_socket(port: int) -> tuple[socket.socket, str]:
    """A dual-stack socket on ``[::]:port``; ``0.0.0.0:port`` where IPv6 is unavailable."""
    if socket.has_ipv6:
        try:
            sock = socket.create_server(
                ("::", port), family=socket.AF_INET6, dualstack_ipv6=socket.has_dualstack_ipv6(), backlog=128
            )
            return sock, "::"
        except OSError as exc:
            if exc.errno in (98, 48):  # EADDRINUSE (Linux, macOS): do not hide it behind IPv4
                raise
            log.warning("IPv6 unavailable (%s); listening on 0.0.0.0 only", exc.strerror)
    return socket.create_server(("0.0.0.0", port), backlog=128), "0.0.0.0"


def cmd_serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    app = create_app()
    port = args.port if args.port is not None else app.config["PORT"]
    try:
        sock, host = _listen_socket(port)
    except OSError as exc:
        return _fail(f"cannot listen on port {port}: {exc.strerror or exc}")
    actual_port = sock.getsockname()[1]
    server = make_server(host, actual_port, app, threaded=True, fd=sock.fileno())
    sock.close()  # the server holds its own duplicate of the descriptor
    log.info(
        "serving on %s port %s (APP_ENV=%s, database %s)",
        "[::] (dual stack)" if host == "::" else host,
        actual_port,
        app.config["APP_ENV"],
        redact_url(app.config["SQLALCHEMY_DATABASE_URI"]),
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flask_service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    serve = sub.add_parser("serve", help="development server on [::]:$PORT (default 5002)")
    serve.add_argument("--port", type=int, default=None, help="overrides $PORT")
    serve.set_defaults(func=cmd_serve)
    cu = sub.add_parser("create-user", help="create a user (or update its password and tenant)")
    cu.add_argument("--username", required=True)
    cu.add_argument("--password", required=True)
    cu.add_argument("--tenant", required=True, help="tenant id, ^[A-Za-z0-9_-]{1,64}$")
    cu.set_defaults(func=cmd_create_user)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return _fail(str(exc))
    except Exception as exc:
        if args.command == "serve":
            raise
        log.debug("command failed", exc_info=True)
        return _fail(
            f"{args.command} failed: {type(exc).__name__}: {redact_url(str(exc).splitlines()[0] if str(exc) else '')}",
            1,
        )


if __name__ == "__main__":
    sys.exit(main())
