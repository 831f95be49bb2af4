-- Pod-wide settings, one row (id = 1), changed by `php daemon.php config --<key>=<value>`.
create table configuration (
    id integer primary key default 1 check (id = 1),
    xmppdomain varchar(256),
    description text,
    info text,
    timezone varchar(64),
    updated_at timestamp not null default now()
);
