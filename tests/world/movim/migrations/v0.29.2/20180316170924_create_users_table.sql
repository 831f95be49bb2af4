-- Accounts that have logged in once; `php daemon.php setAdmin <jid>` sets the admin flag.
create table users (
    id varchar(256) primary key,
    admin boolean not null default false,
    nickname varchar(64),
    created_at timestamp not null default now(),
    updated_at timestamp not null default now()
);
