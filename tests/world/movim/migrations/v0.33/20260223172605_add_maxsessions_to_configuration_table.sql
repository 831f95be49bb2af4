-- As upstream v0.33's migration of the same id and name: refuse logins beyond this many sessions
-- (0: no limit), shown by /infos as `maxsessions`.
alter table configuration add column maxsessions integer not null default 0;
