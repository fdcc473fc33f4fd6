#!/usr/bin/env python3
"""Write the pgbench scripts for Q2's floor: the statements Aggios sends for
Q2, word for word (the text sea-query builds), with the ids it binds.

One script per agency, each bound to its own pgbench variables (-D), so that
`pgbench -M prepared` sends the same prepared statements with the same
parameters that Aggios's page query and dataloader batches send.

Usage: q2_floor.py DB_URL OUT_DIR
Writes OUT_DIR/q2_floor_<n>.sql and OUT_DIR/q2_floor.args (one pgbench
argument per line: the -f and -D options).

One difference remains, and it favours the floor's opponent: Aggios opens its
transaction with `BEGIN; SELECT set_config(...)` as one message, which pgbench
cannot prepare, so the floor spends one more round trip on it.
"""
import subprocess
import sys

PAGE = 50   # Q2's projects(first: 50)
DOCS = 5    # documents(first: 5)

PROJECTS = ('SELECT "projects"."id", "projects"."tenant_id", "projects"."client_id", "projects"."name", '
            '"projects"."description", "projects"."status", "projects"."due_date", "projects"."created_by", '
            '"projects"."created_at", "projects"."updated_at" FROM "projects" WHERE "projects"."tenant_id" = {t} '
            'ORDER BY "projects"."id" ASC LIMIT {limit}')
CLIENTS = ('SELECT "clients"."id", "clients"."tenant_id", "clients"."name", "clients"."email", "clients"."phone", '
           '"clients"."status", "clients"."notes", "clients"."created_by", "clients"."created_at", '
           '"clients"."updated_at" FROM "clients" WHERE "clients"."tenant_id" = {t} AND "clients"."id" IN ({ids})')
DOCUMENTS = ('SELECT * FROM (SELECT *, ROW_NUMBER() OVER ( PARTITION BY "project_id" ORDER BY "id" ASC ) AS "rn" '
             'FROM "documents" WHERE "tenant_id" = {t} AND "project_id" IN ({ids})) AS "ranked" WHERE "rn" <= {n} '
             'ORDER BY "project_id" ASC, "id" ASC')
USERS = ('SELECT "users"."id", "users"."tenant_id", "users"."email", "users"."password_hash", "users"."first_name", '
         '"users"."last_name", "users"."role", "users"."is_active", "users"."created_at", "users"."updated_at" '
         'FROM "users" WHERE "users"."tenant_id" = {t} AND "users"."id" IN ({ids})')


def rows(db, sql):
    out = subprocess.run(["psql", db, "-qAtc", sql], check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def main(db, out):
    # The page asks one row more than it shows, to know if another page follows.
    args = [f"-Dpage_limit={PAGE + 1}", f"-Ddocs={DOCS}"]
    for line in rows(db, "SELECT n, id FROM bench_tenants ORDER BY n"):
        n, tenant = line.split("|")
        v = f"t{n}_"
        projects = rows(db, f"SELECT id, client_id FROM projects WHERE tenant_id = '{tenant}' ORDER BY id LIMIT {PAGE}")
        project_ids = [p.split("|")[0] for p in projects]
        # The loaders batch distinct keys, in the order the resolvers asked.
        client_ids = list(dict.fromkeys(p.split("|")[1] for p in projects))
        uploader_ids = list(dict.fromkeys(rows(db, f"""
            SELECT uploaded_by FROM (SELECT uploaded_by, project_id, id,
                   ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY id) AS rn
              FROM documents WHERE tenant_id = '{tenant}' AND project_id IN ({",".join(f"'{p}'" for p in project_ids)})) d
             WHERE rn <= {DOCS} AND uploaded_by IS NOT NULL ORDER BY project_id, id""")))

        def bind(prefix, ids):
            for i, value in enumerate(ids):
                args.append(f"-D{v}{prefix}{i}={value}")
            return ", ".join(f":{v}{prefix}{i}" for i in range(len(ids)))

        args.append(f"-D{v}t={tenant}")
        t = f":{v}t"
        script = "\n".join([
            "BEGIN;",
            f"SELECT set_config('aggios.tenant_id', {t}, true);",
            PROJECTS.format(t=t, limit=":page_limit") + ";",
            CLIENTS.format(t=t, ids=bind("c", client_ids)) + ";",
            DOCUMENTS.format(t=t, ids=bind("p", project_ids), n=":docs") + ";",
            USERS.format(t=t, ids=bind("u", uploader_ids)) + ";",
            "COMMIT;",
            "",
        ])
        path = f"{out}/q2_floor_{n}.sql"
        with open(path, "w") as f:
            f.write(script)
        args.append(f"-f{path}@1")
    with open(f"{out}/q2_floor.args", "w") as f:
        f.write("\n".join(args) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
