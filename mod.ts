/**
 * hexz: a seekable, deduplicated, compressed snapshot archive (`.hxz`).
 *
 * @module
 */
export {};
