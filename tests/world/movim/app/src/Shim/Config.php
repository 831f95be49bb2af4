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

    /** A setting, or $default when unset or empty (Movim's config() treats empty as unset;
     *  `config` in app/Helpers/UtilsHelper.php @ v0.29.2 … v0.34.1). */
    public static function env(string $key, ?string $default = null): ?string
    {
        self::load();
        $value = getenv($key);
        return ($value === false || $value === '') ? $default : $value;
    }

    /**
     * The release of this image, e.g. `v0.30`: the first line of the VERSION file, trimmed, as
     * `Bootstrap::getVersion` reads it (src/Movim/Bootstrap.php @ v0.29.2 … v0.34.1). Real releases
     * write the tag there with its `v` and no newline.
     */
    public static function version(): string
    {
        $f = fopen(self::ROOT . '/VERSION', 'r');
        return trim((string) fgets($f));
    }

    /** Whether this release is $release or newer (`v0.30` = `v0.30.0`; the `v` is optional). */
    public static function atLeast(string $release): bool
    {
        $norm = function (string $v): string {
            $parts = explode('.', ltrim($v, 'v'));
            return implode('.', array_pad($parts, 3, '0'));
        };
        return version_compare($norm(self::version()), $norm($release), '>=');
    }

    /**
     * Whether Movim logs to files under LOG_PATH (upstream Movim, every release) or to stderr: the
     * seed's image patches v0.29.2 to log to php://stderr (its log-stderr.patch on
     * app/Helpers/UtilsHelper.php `logError`/`logInfo`/`logDebug`, which also drops the log
     * directory check of `Bootstrap::checkSystem`). The stand-in's v0.29.2 is that image; from
     * v0.30 it is upstream Movim unpatched.
     */
    public static function logsToFiles(): bool
    {
        return self::atLeast('v0.30');
    }

    /** LOG_PATH, default `<root>/log/` (config/paths.php @ v0.29.2 … v0.34.1). */
    public static function logPath(): string
    {
        return self::env('LOG_PATH', self::ROOT . '/log/');
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

    /** PUBLIC_IMAGES_PATH, new in v0.33 (src/Movim/Bootstrap.php `setConstants` @ v0.33). */
    public static function publicImagesPath(): string
    {
        return self::ROOT . '/public/images/';
    }

    /** The unix socket on which the daemon answers fpm (Movim's API_SOCKET). */
    public static function apiSocket(): string
    {
        return self::cachePath() . 'socketapi.sock';
    }
}
