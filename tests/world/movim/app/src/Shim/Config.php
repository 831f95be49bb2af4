<?php
// Why this file exists: Movim reads its settings from /var/www/movim/.env with phpdotenv
// (createUnsafeImmutable + safeLoad: real environment variables win over the file, a missing file is
// not an error). php-fpm clears the environment, so under fpm the file is the only source. This class
// does the same and exposes the few settings and paths the stand-in needs.

namespace Shim;

use Dotenv\Dotenv;

final class Config
{
    public const ROOT = '/var/www/movim';

    private static bool $loaded = false;

    public static function load(): void
    {
        if (!self::$loaded && file_exists(self::ROOT . '/.env')) {
            Dotenv::createUnsafeImmutable(self::ROOT)->safeLoad();
        }
        self::$loaded = true;
    }

    /** A setting, or $default when unset or empty (Movim's config() treats empty as unset). */
    public static function env(string $key, ?string $default = null): ?string
    {
        self::load();
        $value = getenv($key);
        return ($value === false || $value === '') ? $default : $value;
    }

    /** The Movim version of this image, e.g. `0.30.0` (the VERSION file, as in Movim's tree). */
    public static function version(): string
    {
        return trim((string) file_get_contents(self::ROOT . '/VERSION'));
    }

    /** The fault this image was built with: none, daemon-exits, migration-fails or never-healthy. */
    public static function fault(): string
    {
        return trim((string) @file_get_contents(self::ROOT . '/FAULT')) ?: 'none';
    }

    public static function cachePath(): string
    {
        return rtrim(self::env('CACHE_PATH', self::ROOT . '/cache/'), '/') . '/';
    }

    public static function publicCachePath(): string
    {
        return self::ROOT . '/public/cache/';
    }

    /** The unix socket on which the daemon answers fpm (Movim's API_SOCKET). */
    public static function apiSocket(): string
    {
        return self::cachePath() . 'socketapi.sock';
    }
}
