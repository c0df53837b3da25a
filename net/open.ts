/**
 * Opening an archive by location: a local path, or an http(s) URL read lazily with range
 * requests, with the parents of thin archives and zstd dictionaries wired. mod.ts exports
 * these; the command line imports them from here so that a command loads only what it uses.
 *
 * @module
 */
import { HexzError } from "../core/errors.ts";
import { type ByteSource, type CachedRead, fileSource } from "../core/io/source.ts";
import { type Archive, openArchive, type OpenOptions } from "../core/read/archive.ts";
import { openParents, parentResolver } from "../core/read/parent.ts";
import { createZstdDictCodec } from "../core/codec/zstd_dict.ts";
import { httpSource } from "./http_source.ts";
import { expectLocation, expectOptions, expectString } from "../core/args.ts";

/** How local files are read: see `FileSourceOptions` (servers pass `cachedRead`). */
export interface SourceOptions {
  cachedRead?: CachedRead;
  blockAtMostMs?: number;
}

/** Opens a local path, or an http(s) URL read lazily with range requests, as a byte source. */
export function openSource(location: string, opts: SourceOptions = {}): Promise<ByteSource> {
  try {
    expectString(location, "openSource", "a path or a URL");
    expectOptions(opts, "openSource: options");
  } catch (e) {
    return Promise.reject(e);
  }
  if (/^https?:\/\//i.test(location)) return httpSource(location);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    return Promise.reject(new HexzError("unsupported", `${location}: URLs are not supported yet`));
  }
  return fileSource(location, opts);
}

/** Options of `open`: those of `openArchive`, plus when to look for parents and how local
 * files (the archive's and its parents') are read. */
export interface OpenAllOptions extends OpenOptions, SourceOptions {
  /** Open and verify the whole parent chain now (default) or on the first read that needs it. */
  lazyParents?: boolean;
}

/**
 * Opens an archive by path (or a ByteSource) with everything wired: parents of thin archives
 * are found and verified (a missing or different parent is an error naming it), dictionaries
 * loaded.
 */
export async function open(
  location: string | ByteSource,
  opts: OpenAllOptions = {},
): Promise<Archive> {
  expectLocation(location, "open");
  expectOptions(opts, "open: options");
  const full: OpenOptions = { ...opts };
  const sourceOpts: SourceOptions = {
    cachedRead: opts.cachedRead,
    blockAtMostMs: opts.blockAtMostMs,
  };
  full.loadDictionary ??= createZstdDictCodec;
  full.resolveParent ??= parentResolver((loc) => openSource(loc, sourceOpts), full);
  const src = typeof location === "string" ? await openSource(location, sourceOpts) : location;
  const a = await openArchive(src, full);
  return opts.lazyParents ? a : await openParents(a);
}
