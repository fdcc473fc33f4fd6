-- The benchmark data of issue 4, written as the owner (RLS does not apply to
-- a superuser): 20 agencies, each with 20 users, 200 clients, 5 projects per
-- client and 4 documents per project. :hash is one real argon2id hash, so the
-- users can sign in.
INSERT INTO tenants (id, name, subdomain, is_active, storage_quota_bytes, storage_used_bytes, created_at, updated_at)
SELECT gen_random_uuid(), 'Bench ' || n, 't' || lpad(n::text, 2, '0'), true, 10737418240, 0, now(), now()
FROM generate_series(1, 20) n;

INSERT INTO users (id, tenant_id, email, password_hash, first_name, last_name, role, is_active, created_at, updated_at)
SELECT gen_random_uuid(), t.id, 'u' || u || '@' || t.subdomain || '.bench', :'hash', 'User', u::text,
       CASE WHEN u = 0 THEN 'OWNER' ELSE 'MEMBER' END, true, now(), now()
FROM tenants t, generate_series(0, 19) u WHERE t.subdomain LIKE 't__';

INSERT INTO clients (id, tenant_id, name, email, status, created_at, updated_at)
SELECT gen_random_uuid(), t.id, 'Client ' || c, 'client' || c || '@example.com', 'ACTIVE', now(), now()
FROM tenants t, generate_series(1, 200) c WHERE t.subdomain LIKE 't__';

INSERT INTO projects (id, tenant_id, client_id, name, status, created_at, updated_at)
SELECT gen_random_uuid(), c.tenant_id, c.id, c.name || ' project ' || p, 'ACTIVE', now(), now()
FROM clients c, generate_series(1, 5) p;

INSERT INTO documents (id, tenant_id, project_id, name, content_type, size_bytes, checksum_sha256, current_version, uploaded_by, created_at, updated_at)
SELECT gen_random_uuid(), p.tenant_id, p.id, 'doc-' || d || '.pdf', 'application/pdf', 1000 + d, repeat('a', 64), 1,
       (SELECT u.id FROM users u WHERE u.tenant_id = p.tenant_id ORDER BY u.email OFFSET (d * 3) % 20 LIMIT 1), now(), now()
FROM projects p, generate_series(1, 4) d;

-- PostGraphile follows foreign keys; documents.uploaded_by has none (a user
-- may go), so a smart comment declares the relation for it.
COMMENT ON TABLE documents IS E'@foreignKey (tenant_id, uploaded_by) references users (tenant_id, id)';

CREATE TABLE bench_tenants AS SELECT row_number() OVER (ORDER BY subdomain) AS n, id, subdomain FROM tenants WHERE subdomain LIKE 't__';
GRANT SELECT ON bench_tenants TO aggios_app;
ANALYZE;
