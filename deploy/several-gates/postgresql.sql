-- The database both gates share, on the PostgreSQL server (13 or newer):
--   sudo -u postgres psql -v password="'a long random password'" -f postgresql.sql
-- then put postgresql://hearthgate:PASSWORD@HOST:5432/hearthgate in
-- /etc/hearthgate/database.env (mode 0600) on each gate, and run `hearthgate db migrate`
-- once (each gate also migrates on start; two starting together migrate once).
CREATE ROLE hearthgate LOGIN PASSWORD :password;
CREATE DATABASE hearthgate OWNER hearthgate;
