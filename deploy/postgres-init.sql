-- Creates one database per service (each service owns its schema; no service
-- reads another's tables).  Run once by the postgres image's entrypoint, as
-- POSTGRES_USER (xinfang), when the data volume is empty: mounted at
-- /docker-entrypoint-initdb.d/10-xinfang.sql by docker-compose.yml.
-- Tables are created afterwards by `xinfang migrate` (Alembic).

CREATE DATABASE xinfang_intake    WITH ENCODING 'UTF8';
CREATE DATABASE xinfang_assign    WITH ENCODING 'UTF8';
CREATE DATABASE xinfang_supervise WITH ENCODING 'UTF8';
CREATE DATABASE xinfang_notify    WITH ENCODING 'UTF8';

-- Nobody but the owner connects to them.
REVOKE ALL ON DATABASE xinfang_intake    FROM PUBLIC;
REVOKE ALL ON DATABASE xinfang_assign    FROM PUBLIC;
REVOKE ALL ON DATABASE xinfang_supervise FROM PUBLIC;
REVOKE ALL ON DATABASE xinfang_notify    FROM PUBLIC;
