-- Q2's SQL as Aggios issues it (page, then one batch each for clients,
-- documents and uploaders), as the runtime role under RLS, the tenant set in
-- the transaction. The batches select by the page's ids through subqueries,
-- which pgbench needs in place of the ids Aggios binds.
\set t random(1, 20)
BEGIN;
SET LOCAL ROLE aggios_app;
SELECT set_config('aggios.tenant_id', (SELECT id::text FROM bench_tenants WHERE n = :t), true);
SELECT id, tenant_id, client_id, name, description, status, due_date, created_by, created_at, updated_at
  FROM projects WHERE tenant_id = current_setting('aggios.tenant_id')::uuid ORDER BY id LIMIT 51;
SELECT id, tenant_id, name, email, phone, status, notes, created_by, created_at, updated_at
  FROM clients WHERE tenant_id = current_setting('aggios.tenant_id')::uuid
   AND id IN (SELECT client_id FROM projects WHERE tenant_id = current_setting('aggios.tenant_id')::uuid ORDER BY id LIMIT 50);
SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY id) AS rn FROM documents
   WHERE tenant_id = current_setting('aggios.tenant_id')::uuid
     AND project_id IN (SELECT id FROM projects WHERE tenant_id = current_setting('aggios.tenant_id')::uuid ORDER BY id LIMIT 50)) ranked
 WHERE rn <= 5 ORDER BY project_id, id;
SELECT id, tenant_id, email, password_hash, first_name, last_name, role, is_active, created_at, updated_at
  FROM users WHERE tenant_id = current_setting('aggios.tenant_id')::uuid
   AND id IN (SELECT uploaded_by FROM documents WHERE tenant_id = current_setting('aggios.tenant_id')::uuid
                AND project_id IN (SELECT id FROM projects WHERE tenant_id = current_setting('aggios.tenant_id')::uuid ORDER BY id LIMIT 50));
COMMIT;
