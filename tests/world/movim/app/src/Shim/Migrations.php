<?php
// Why this file exists: Movim migrates its schema with Phinx, and movim-setup reads Phinx's state
// (the `phinxlog` table, `phinx status` exit codes). This reproduces the parts of Phinx's semantics
// the tool relies on: migrations are files `database/migrations/<14-digit version>_<snake_name>.sql|php`,
// each applied in its own transaction (unless a PHP migration opts out) and recorded in `phinxlog`
// afterwards, with Phinx's table layout.

namespace Shim;

use PDO;

final class Migrations
{
    public const TABLE = 'phinxlog';

    public function __construct(private PDO $db, private string $dir = Config::ROOT . '/database/migrations')
    {
        // Phinx creates its log table on connect, for `status` as well as `migrate`.
        $this->db->exec('CREATE TABLE IF NOT EXISTS ' . self::TABLE . ' (
            version BIGINT NOT NULL PRIMARY KEY,
            migration_name VARCHAR(100) NULL,
            start_time TIMESTAMP NULL,
            end_time TIMESTAMP NULL,
            breakpoint BOOLEAN NOT NULL DEFAULT FALSE)');
    }

    /** The migrations this release knows: version => [name, file], oldest first. */
    public function available(): array
    {
        $found = [];
        foreach (glob($this->dir . '/*.{sql,php}', GLOB_BRACE) as $file) {
            if (preg_match('/^(\d{14})_(\w+)\.(sql|php)$/', basename($file), $m)) {
                $name = str_replace(' ', '', ucwords(str_replace('_', ' ', $m[2])));
                $found[(int) $m[1]] = ['name' => $name, 'file' => $file];
            }
        }
        ksort($found);
        return $found;
    }

    /** The migrations recorded in the database: version => row, oldest first. */
    public function applied(): array
    {
        $rows = $this->db->query('SELECT * FROM ' . self::TABLE . ' ORDER BY version')->fetchAll();
        return array_column($rows, null, 'version');
    }

    /** Known to this release, not yet applied ("down" in Phinx's words). */
    public function pending(): array
    {
        return array_diff_key($this->available(), $this->applied());
    }

    /** Applied, but unknown to this release (the database is newer than the code). */
    public function missing(): array
    {
        return array_diff_key($this->applied(), $this->available());
    }

    /** Applies one migration and records it; throws (leaving earlier ones recorded) on failure. */
    public function apply(int $version, array $migration): void
    {
        $start = date('Y-m-d H:i:s');
        if (str_ends_with($migration['file'], '.php')) {
            // A PHP migration returns ['transaction' => bool, 'up' => fn (PDO $db) => …].
            $spec = require $migration['file'];
            $transaction = $spec['transaction'] ?? true;
            $up = $spec['up'];
        } else {
            $transaction = true;
            $sql = file_get_contents($migration['file']);
            $up = fn (PDO $db) => $db->exec($sql);
        }

        if ($transaction) {
            $this->db->beginTransaction();
        }
        $up($this->db);
        if ($transaction) {
            $this->db->commit();
        }

        $insert = $this->db->prepare('INSERT INTO ' . self::TABLE
            . ' (version, migration_name, start_time, end_time, breakpoint) VALUES (?, ?, ?, ?, false)');
        $insert->execute([$version, $migration['name'], $start, date('Y-m-d H:i:s')]);
    }
}
