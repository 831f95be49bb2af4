-- Web sessions; the daemon deletes every row when it starts (all users are logged out).
create table sessions (
    id varchar(64) primary key,
    user_id varchar(256) not null references users (id) on delete cascade,
    username varchar(256),
    host varchar(256),
    active boolean not null default false,
    created_at timestamp not null default now()
);
