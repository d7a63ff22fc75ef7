"""``mammosynth serve``: the reader-study web app."""
from __future__ import annotations

import argparse
import getpass
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..reader import DEFAULT_DB

    p = subparsers.add_parser(
        "serve",
        help="run the reader-study and training web app",
        description=(
            "Serve reader studies (real or synthetic?, detection and localisation, training) built from "
            "prepared datasets. The database is a SQLite file in the working directory by default, or "
            "PostgreSQL by URL (postgresql+psycopg://user:pass@host/db); it is created and migrated on start."
        ),
    )
    p.add_argument("--db", default=os.environ.get("MAMMOSYNTH_READER_DB", DEFAULT_DB),
                   help="database URL (default %(default)s; env MAMMOSYNTH_READER_DB)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument("--create-admin", metavar="USERNAME", default=None,
                   help="create an admin account (password from MAMMOSYNTH_ADMIN_PASSWORD or a prompt) and exit")
    p.add_argument("--secure-cookies", action="store_true",
                   help="mark session cookies Secure (set this when served behind HTTPS)")
    p.set_defaults(func=handler)


def create_admin(db_url: str, username: str, password: str) -> None:
    from ..reader import service
    from ..reader.db import open_db

    with open_db(db_url).begin() as db:
        try:
            service.create_user(db, username, password, "admin")
        except service.Conflict as exc:
            raise ValueError(str(exc)) from None


def handler(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..reader.app import create_app
    except ImportError as exc:
        raise RuntimeError(f"the web app needs the 'reader' extra: pip install 'mammosynth[reader]' ({exc})") from None
    if args.create_admin:
        password = os.environ.get("MAMMOSYNTH_ADMIN_PASSWORD") or getpass.getpass(f"password for {args.create_admin}: ")
        create_admin(args.db, args.create_admin, password)
        print(f"created admin {args.create_admin!r} in {args.db}")
        return 0
    app = create_app(args.db, secure_cookies=args.secure_cookies)
    print(f"mammosynth reader studies on http://{args.host}:{args.port}/ (database {args.db})")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
