<?php
// Why this file exists: every Movim entry point talks to PostgreSQL with the DB_* settings; this is the
// one place that turns them into a PDO connection (only the pgsql driver, like the containers).

namespace Shim;

use PDO;

final class Db
{
    public static function connect(): PDO
    {
        $driver = Config::env('DB_DRIVER', 'pgsql');
        if ($driver !== 'pgsql') {
            throw new \RuntimeException("DB_DRIVER=$driver is not supported by this image (pgsql only)");
        }
        $dsn = sprintf(
            'pgsql:host=%s;port=%d;dbname=%s;connect_timeout=5',
            Config::env('DB_HOST', 'localhost'),
            (int) Config::env('DB_PORT', '5432'),
            Config::env('DB_DATABASE', 'movim')
        );
        return new PDO($dsn, Config::env('DB_USERNAME', 'movim'), Config::env('DB_PASSWORD', 'movim'), [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
        ]);
    }
}
