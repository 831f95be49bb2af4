-- New in v0.30 (the stand-in's own migration): message threads (a column and its index).
alter table messages add column thread varchar(128);
create index messages_thread_index on messages (thread);
