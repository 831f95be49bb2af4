-- First migration of the migration-fails release: succeeds and is recorded in phinxlog.
create table reactions (
    message_id uuid not null references messages (id) on delete cascade,
    jidfrom varchar(256) not null,
    emoji varchar(32) not null,
    primary key (message_id, jidfrom, emoji)
);
