"""Print a development bearer token: ``python -m gateway.token [--user UUID] [--ttl 3600]``.

Signed with ``BRIGHTRUN_JWT_SECRET`` (the embedded default's development
secret when unset) for the audience ``BRIGHTRUN_JWT_AUDIENCE`` (default
``authenticated``, as Supabase issues).
"""

from __future__ import annotations

import argparse
import os
import uuid

from gateway.auth import SUPABASE_AUDIENCE, mint_token
from services.common.config import DEV_JWT_SECRET


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.token", description=__doc__.splitlines()[0])
    parser.add_argument("--user", type=uuid.UUID, default=None, help="user id (default: a new random UUID)")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until the token expires (default 3600)")
    args = parser.parse_args(argv)
    if args.ttl <= 0:
        parser.error("--ttl must be a positive number of seconds")
    user = str(args.user or uuid.uuid4())
    secret = os.environ.get("BRIGHTRUN_JWT_SECRET") or DEV_JWT_SECRET
    print(mint_token(user, secret, args.ttl, audience=os.environ.get("BRIGHTRUN_JWT_AUDIENCE", SUPABASE_AUDIENCE)))


if __name__ == "__main__":
    main()
