-- As upstream v0.34.1's migration of the same id and name: hosts exempt from the SSRF block.
alter table configuration add column ssrfwhitelist text;
