<?php
// Second migration of the migration-fails release: it runs outside a transaction (as a Phinx migration
// may), changes the schema, then fails. The database is left half-way: the first migration recorded,
// this one's column added but not recorded — only restoring a backup gets the old release back cleanly.

return [
    'transaction' => false,
    'up' => function (PDO $db): void {
        $db->exec('alter table messages add column retracted boolean not null default false');
        $db->exec('update messages set retracted = true where retraction_id is not null');
    },
];
