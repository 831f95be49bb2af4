-- Chat messages, the table that grows (backups are mostly this one).
create table messages (
    id uuid primary key default gen_random_uuid(),
    user_id varchar(256) not null references users (id) on delete cascade,
    jidfrom varchar(256) not null,
    jidto varchar(256) not null,
    type varchar(16) not null default 'chat',
    body text,
    published timestamp not null default now()
);
create index messages_user_id_published_index on messages (user_id, published);
