<?php
// Why this file exists: Movim sends every PHP error, warning, notice, deprecation, uncaught exception
// and fatal error of every process (fpm, the daemon, its workers) to `logError`, which writes
// LOG_PATH/errors.log through Monolog. How that fails is what an installer meets on a read-only root,
// so the stand-in reproduces it:
//  - handlers: `Bootstrap::setLogs`, `systemErrorHandler`, `exceptionHandler`,
//    `fatalErrorShutdownHandler` (src/Movim/Bootstrap.php @ v0.30, v0.34.1);
//  - `logError` = Monolog Logger('movim') with StreamHandler(LOG_PATH . '/errors.log') tried first,
//    LineFormatter(null, null, true, true) (app/Helpers/UtilsHelper.php @ v0.30, v0.34.1);
//  - Monolog's StreamHandler (src/Monolog/Handler/StreamHandler.php `write`, `createDir`,
//    `customErrorHandler`, and `Utils::getRecordMessageForException` in Seldaek/monolog @ 3.9.0): a new
//    handler per call creates the directory (mkdir 0777, recursive) on its first write, and throws
//    UnexpectedValueException `There is no existing directory at "<dir>" and it could not be created:
//    <mkdir error>` or `The stream or file "<file>" could not be opened in append mode: <error>`, each
//    followed by `\nThe exception occurred while attempting to log: <message>`.
// The exception is thrown from inside the error handler, so it surfaces where the warning was raised.
// v0.29.2 is the seed's patched image: Monolog writes to php://stderr instead (Config::logsToFiles).
// Differs: no SyslogHandler (no syslog in the containers); info.log and debug.log are never written.

namespace Shim;

final class Log
{
    /** `Bootstrap::setLogs`: every error level, uncaught exceptions, fatal errors at shutdown. */
    public static function install(): void
    {
        set_error_handler([self::class, 'systemErrorHandler'], E_ALL);
        set_exception_handler([self::class, 'exceptionHandler']);
        register_shutdown_function([self::class, 'fatalErrorShutdownHandler']);
    }

    public static function systemErrorHandler(int $errno, string $errstr, string $errfile = '', int $errline = 0, $trace = ''): bool
    {
        if (is_array($trace)) {
            $trace = '';
        }
        $error = $errstr . ' in ' . $errfile . ' (line ' . $errline . ")\n";
        $fullError = $trace != '' ? $error . "Trace\n" . $trace : $error;

        if (PHP_SAPI !== 'cli' && ob_get_contents() == '') {
            echo Config::logsToFiles()
                ? 'An error occured during the Movim boot check the ' . Config::logPath() . "error.log file\n"
                : "An error occured during the Movim boot check the standard error\n";
        }

        self::error($fullError);
        return false;
    }

    public static function exceptionHandler(\Throwable $exception): void
    {
        self::systemErrorHandler(
            E_ERROR,
            get_class($exception) . ': ' . $exception->getMessage(),
            $exception->getFile(),
            $exception->getLine(),
            $exception->getTraceAsString()
        );
    }

    public static function fatalErrorShutdownHandler(): void
    {
        $last = error_get_last();
        if ($last && $last['type'] === E_ERROR) {
            self::systemErrorHandler(E_ERROR, $last['message'], $last['file'], $last['line']);
        }
    }

    /**
     * Runs $io with PHP's warnings silenced. Movim's error handler ignores `@` (PHP calls it anyway),
     * so the shim's own socket and process plumbing — which upstream does through ReactPHP streams,
     * without PHP warnings — must not reach it.
     */
    public static function quietly(callable $io): mixed
    {
        set_error_handler(fn (): bool => true);
        try {
            return $io();
        } finally {
            restore_error_handler();
        }
    }

    /** `logError`: one record at level ERROR on channel `movim`. */
    public static function error(string $message): void
    {
        $line = '[' . (new \DateTimeImmutable())->format('Y-m-d\TH:i:s.uP') . '] movim.ERROR: ' . $message . "  \n";
        if (!Config::logsToFiles()) {
            file_put_contents('php://stderr', $line);
            return;
        }
        self::stream(Config::logPath() . '/errors.log', $line, $message);
    }

    /** What one StreamHandler does on its first write. */
    private static function stream(string $url, string $line, string $message): void
    {
        $forException = "\nThe exception occurred while attempting to log: " . $message;
        $errorMessage = null;
        $capture = function (int $code, string $msg) use (&$errorMessage): bool {
            $errorMessage = preg_replace('{^(fopen|mkdir|fwrite)\(.*?\): }', '', $msg);
            return true;
        };

        $dir = dirname($url);
        if (!is_dir($dir)) {
            set_error_handler($capture);
            $status = mkdir($dir, 0777, true);
            restore_error_handler();
            if ($status === false && !is_dir($dir) && strpos((string) $errorMessage, 'File exists') === false) {
                throw new \UnexpectedValueException(sprintf('There is no existing directory at "%s" and it could not be created: ' . $errorMessage, $dir) . $forException);
            }
        }

        $errorMessage = null;
        set_error_handler($capture);
        try {
            $stream = fopen($url, 'a');
        } finally {
            restore_error_handler();
        }
        if (!is_resource($stream)) {
            throw new \UnexpectedValueException(sprintf('The stream or file "%s" could not be opened in append mode: ' . $errorMessage, $url) . $forException);
        }
        fwrite($stream, $line);
        fclose($stream);
    }
}
