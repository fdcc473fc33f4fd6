-- More agencies around the 20 measured ones (benches/domain.sh AGENCIES=N):
-- :others agencies of the same shape (20 users, 200 clients, 5 projects per
-- client, 4 documents per project), written as the owner like seed.sql.
-- Their subdomains (o0001, ...) never match the measured ones (t01..t20).
INSERT INTO tenants (id, name, subdomain, is_active, storage_quota_bytes, storage_used_bytes, created_at, updated_at)
SELECT gen_random_uuid(), 'Other ' || n, 'o' || lpad(n::text, 4, '0'), true, 10737418240, 0, now(), now()
FROM generate_series(1, :others) n;

INSERT INTO users (id, tenant_id, email, password_hash, first_name, last_name, role, is_active, created_at, updated_at)
SELECT gen_random_uuid(), t.id, 'u' || u || '@' || t.subdomain || '.bench', :'hash', 'User', u::text,
       CASE WHEN u = 0 THEN 'OWNER' ELSE 'MEMBER' END, true, now(), now()
FROM tenants t, generate_series(0, 19) u WHERE t.subdomain LIKE 'o____';

INSERT INTO clients (id, tenant_id, name, email, status, created_at, updated_at)
SELECT gen_random_uuid(), t.id, 'Client ' || c, 'client' || c || '@example.com', 'ACTIVE', now(), now()
FROM tenants t, generate_series(1, 200) c WHERE t.subdomain LIKE 'o____';

INSERT INTO projects (id, tenant_id, client_id, name, status, created_at, updated_at)
SELECT gen_random_uuid(), c.tenant_id, c.id, c.name || ' project ' || p, 'ACTIVE', now(), now()
FROM clients c JOIN tenants t ON t.id = c.tenant_id AND t.subdomain LIKE 'o____', generate_series(1, 5) p;

-- The uploader by number, as seed.sql picks it, without a subquery per row.
CREATE TEMP TABLE numbered_users AS
SELECT tenant_id, id, row_number() OVER (PARTITION BY tenant_id ORDER BY email) - 1 AS k FROM users;
CREATE INDEX ON numbered_users (tenant_id, k);

INSERT INTO documents (id, tenant_id, project_id, name, content_type, size_bytes, checksum_sha256, current_version, uploaded_by, created_at, updated_at)
SELECT gen_random_uuid(), p.tenant_id, p.id, 'doc-' || d || '.pdf', 'application/pdf', 1000 + d, repeat('a', 64), 1, u.id, now(), now()
FROM projects p JOIN tenants t ON t.id = p.tenant_id AND t.subdomain LIKE 'o____'
CROSS JOIN generate_series(1, 4) d
JOIN numbered_users u ON u.tenant_id = p.tenant_id AND u.k = (d * 3) % 20;

ANALYZE;
