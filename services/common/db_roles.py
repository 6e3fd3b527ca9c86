"""Each service's own PostgreSQL role: what it is called, what it owns, and the SQL that makes it.

A service connects as ``brightrun_<service>`` (LOGIN, NOSUPERUSER, NOBYPASSRLS, no CREATEDB or
CREATEROLE) that owns its schema and everything in it and nothing else, so it can migrate its own
tables and cannot read another service's; row-level security (``services.common.row_security``)
applies to it on every user-owned table. Making the roles needs a superuser (or a role with
CREATEROLE that owns the schemas): the embedded launcher's PostgreSQL runs :func:`provision_sql` at
every start (``services.common.components.Postgres``); elsewhere an operator runs the SQL that
``python -m services.common.db_roles`` prints, then gives each role a password (see deploy/k8s/README.md).

The SQL is idempotent and also upgrades a database from before the roles: it hands the schema and the
tables and functions a superuser created in it to the service's role.
"""

from __future__ import annotations

import re
import sys

# Each service's schema, which its role owns (the ``schema`` its ``server.start`` defaults to).
SERVICE_SCHEMAS = {"dataset_svc": "dataset", "job_svc": "job", "artifact_svc": "artifact", "billing_svc": "billing"}


def role_of(service: str) -> str:
    """The PostgreSQL role ``service`` connects as."""
    if service not in SERVICE_SCHEMAS:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICE_SCHEMAS)}")
    return f"brightrun_{service}"


def provision_sql(role: str, schema: str) -> str:
    """SQL (run by a superuser in the platform's database) that makes ``role`` and gives it ``schema``.

    ``role`` and ``schema`` are interpolated as bare identifiers: only lower-case names are taken."""
    for name in (role, schema):
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain lower-case SQL identifier: {name!r}")
    return f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN; END IF;
END $$;
ALTER ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role};
ALTER SCHEMA {schema} OWNER TO {role};
DO $$ DECLARE item record; BEGIN
  FOR item IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'p') AND c.relowner <> '{role}'::regrole LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO {role}', item.name);
  END LOOP;
  FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = '{schema}' AND p.proowner <> '{role}'::regrole LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO {role}', item.name);
  END LOOP;
END $$;
"""


def all_services_sql() -> str:
    """:func:`provision_sql` for every service."""
    return "".join(provision_sql(role_of(service), schema) for service, schema in SERVICE_SCHEMAS.items())


if __name__ == "__main__":
    sys.stdout.write(all_services_sql())
