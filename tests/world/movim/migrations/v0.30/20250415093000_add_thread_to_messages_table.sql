-- New in 0.30.0: message threads (a column and its index).
alter table messages add column thread varchar(128);
create index messages_thread_index on messages (thread);
