/**
 * hexz: a seekable, deduplicated, compressed snapshot archive (`.hxz`) for disk images,
 * memory dumps, model checkpoints and datasets.
 *
 * ```ts
 * import { inspect, open, pack } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(1 << 20).fill(7));
 * await pack({ output: `${dir}/disk.hxz`, disk: `${dir}/disk.img`, compression: "zstd" });
 * const archive = await open(`${dir}/disk.hxz`);
 * const bytes = await archive.read("disk", 4096, 16); // any range, without unpacking
 * console.log(bytes[0], inspect(archive).streams[0].logicalSize);
 * archive.close();
 * ```
 *
 * @module
 */
import { pack as packFiles, type PackOptions, type PackResult } from "./core/pack/pack.ts";
import { build as buildTree, type BuildOptions, type BuildResult } from "./core/pack/build.ts";
import {
  tarToArchive as convertTars,
  type TarToArchiveOptions,
  type TarToArchiveResult,
} from "./core/convert/tar_to_archive.ts";
import {
  archiveToTar as writeTars,
  type ArchiveToTarOptions,
  type ArchiveToTarResult,
} from "./core/convert/archive_to_tar.ts";
import type { Archive } from "./core/read/archive.ts";
import { findDataRanges } from "./ffi/sparse.ts";
import { readXattrs, specialFiles } from "./ffi/special_files.ts";
import {
  extractTree as restoreTree,
  type ExtractTreeOptions,
  type ExtractTreeResult,
} from "./core/read/files.ts";
import { expectOptions } from "./core/args.ts";

export { HexzError, type HexzErrorCode } from "./core/errors.ts";
export {
  type ByteSource,
  type CachedRead,
  fileSource,
  type FileSourceOptions,
  memorySource,
} from "./core/io/source.ts";
export { cachedReader } from "./ffi/cached_read.ts";
export { httpSource, type HttpSourceOptions } from "./net/http_source.ts";
export { open, type OpenAllOptions, openSource, type SourceOptions } from "./net/open.ts";
export {
  type Archive,
  type BlockInfo,
  openArchive,
  type OpenOptions,
  type StreamRef,
} from "./core/read/archive.ts";
export type { PackOptions, PackProgress, PackResult } from "./core/pack/pack.ts";
export type { DataRange, FindDataRanges } from "./core/pack/input.ts";
export type { BuildOptions, BuildResult } from "./core/pack/build.ts";
export { getProfile, type Profile, type ProfileName, PROFILES } from "./core/pack/profiles.ts";
export { predict, type PredictOptions, type PredictReport } from "./core/pack/predict.ts";
export { flatten } from "./core/pack/repack.ts";
export {
  type PackPool,
  packPool,
  type PackPoolOptions,
  type PackPoolRequest,
  startPackPool,
} from "./core/pack/pool.ts";
export {
  type ExtractTreeOptions,
  type ExtractTreeResult,
  fileTable,
  findFile,
  readFile,
  type SpecialFailure,
  type SpecialFiles,
} from "./core/read/files.ts";
export { selectEntries } from "./core/read/select.ts";
export type { FileEntry, FileType, Xattr } from "./core/format/filetable.ts";
export {
  type ArchiveToTarOptions,
  type ArchiveToTarResult,
  isShardPattern,
  sampleKey,
  shardName,
  tarStream,
} from "./core/convert/archive_to_tar.ts";
export type {
  TarShards,
  TarStream,
  TarToArchiveOptions,
  TarToArchiveResult,
} from "./core/convert/tar_to_archive.ts";
export type { TarCompression } from "./core/tar/compression.ts";
export {
  AUTO_COMPACT_DEAD_BYTES,
  type CompactEvent,
  compactOverlay,
  type CompactResult,
  openOverlay,
  type Overlay,
  OVERLAY_BLOCK,
  type OverlayCompactOptions,
  type OverlayOpenOptions,
  type OverlayStats,
  readOverlayHeader,
} from "./core/overlay/overlay.ts";
export { type CommitOptions, commitOverlay } from "./core/overlay/commit.ts";
export { type ChangedFile, changedFiles } from "./core/overlay/changed_files.ts";
export { diffArchives as diff, type DiffReport, type DiffSide } from "./core/history/diff.ts";
export { lineage, type LineageNode, type ParentStatus } from "./core/history/lineage.ts";
export { type HttpServer, serveHttp, type ServeHttpOptions } from "./serve/http.ts";
export { type NbdOptions, type NbdServer, serveNbd } from "./serve/nbd.ts";
export {
  checkMountpoint,
  mountArchive,
  type MountArchiveOptions,
  type MountedArchive,
} from "./serve/mount.ts";
export { unmountFuse as unmount } from "./ffi/fuse_session.ts";
/** VMs: boot an archive's disk in QEMU with writes in an overlay (resuming a saved state). */
export {
  type BootInfo,
  type BootOptions,
  type BootResult,
  bootVm,
  type VmInfo,
  vmInfoPath,
} from "./vm/boot.ts";
/** Snapshot a VM that `bootVm` runs (disk, RAM and device state) into a thin archive. */
export { readVmInfo, type SnapOptions, type SnapResult, snapVm } from "./vm/snap.ts";
/** Run an installer ISO on an empty disk and pack the disk once the VM powers off. */
export { type InstallOptions, installVm } from "./vm/install.ts";
/** The QEMU machine a VM runs as, and which accelerator works on this host. */
export {
  type Accel,
  chooseAccel,
  type RunningQemu,
  startQemu,
  type StartQemuOptions,
  type VmConfig,
} from "./vm/qemu.ts";
/** A small QMP client (QEMU's control protocol) over a Unix socket. */
export { connectQmp, type Qmp, type QmpConnectOptions, type QmpEvent } from "./vm/qmp.ts";
export { inspectArchive as inspect, type InspectReport } from "./core/read/inspect.ts";
export { checkArchive as check, type CheckReport } from "./core/read/check.ts";
export { type ExtractOptions, extractStream as extract } from "./core/read/extract.ts";
export { type CdcParams, DEFAULT_CDC } from "./core/chunk/fastcdc.ts";
export { type StreamName, STREAMS } from "./core/format/constants.ts";
export type { Header } from "./core/format/header.ts";
export type { EncryptOptions } from "./core/crypto/keys.ts";
export type { KdfName, KdfParams, KdfReport } from "./core/crypto/kdf.ts";
/** Deletes the unfinished outputs of interrupted work (call it from your own signal handler). */
export { removeTemporaries, temporaries } from "./core/io/temporaries.ts";
export { type Check, type CheckStatus, doctor, type DoctorReport } from "./diag/doctor.ts";
export {
  bench,
  type BenchOptions,
  type BenchReport,
  type BenchRow,
  benchSample,
} from "./diag/bench.ts";
export { VERSION } from "./core/version.ts";
/** HDF5 files read by our own reader (docs/HDF5.md): datasets as virtual files. */
export {
  type Field as Hdf5Field,
  type Hdf5Dataset,
  type Hdf5Group,
  type Hdf5Listing,
  listHdf5,
} from "./core/hdf5/datasets.ts";
export {
  type Hdf5Metadata,
  packHdf5,
  type PackHdf5Options,
  type PackHdf5Result,
} from "./core/pack/hdf5.ts";
export {
  generateKeyPair,
  type KeyPair,
  readKeyFile,
  saveKeyPair,
  signArchive,
  type SignOptions,
  type SignResult,
  verifyArchive,
  type VerifyOptions,
  type VerifyReport,
  type VerifyStatus,
} from "./core/sign/signature.ts";

/**
 * Packs a disk image and/or a memory dump into a new archive. The holes of sparse inputs are
 * not read: they are found with SEEK_DATA/SEEK_HOLE on Linux when FFI is allowed
 * (`--allow-ffi`; `findDataRanges: () => null` turns it off), and the archive is the same
 * either way.
 */
export async function pack(opts: PackOptions): Promise<PackResult> {
  expectOptions(opts, "pack", true);
  return await packFiles({ ...opts, findDataRanges: opts.findDataRanges ?? findDataRanges });
}

/**
 * Packs a directory tree (and optionally a memory dump), with `pack`'s hole skipping. Extended
 * attributes are read through libc (llistxattr/lgetxattr) where `--allow-ffi` is granted;
 * without it the tree is packed without them and `onWarning` says so once (`noXattrs: true`
 * leaves them out quietly).
 */
export async function build(opts: BuildOptions): Promise<BuildResult> {
  expectOptions(opts, "build", true);
  return await buildTree({
    ...opts,
    findDataRanges: opts.findDataRanges ?? findDataRanges,
    readXattrs: opts.readXattrs ?? readXattrs,
  });
}

/**
 * Restores the tree of a directory archive under `outDir` (new, empty, or with `force` any
 * directory). Device nodes, FIFOs and extended attributes are made through libc (mknod,
 * lsetxattr, never through a symlink) where `--allow-ffi` is granted; what cannot be made
 * (without FFI, or nodes and `security.*` xattrs when not root) is told once per kind through
 * `onWarning`, and nodes not made are counted in `notCreated`.
 */
export async function extractTree(
  archive: Archive,
  outDir: string,
  opts: ExtractTreeOptions = {},
): Promise<ExtractTreeResult> {
  expectOptions(opts, "extractTree: options");
  return await restoreTree(archive, outDir, {
    ...opts,
    special: opts.special === undefined ? specialFiles() : opts.special,
  });
}

/**
 * Converts tars (plain, gzip or zstd, found from their first bytes; ustar, GNU and PAX) into a
 * directory archive like `build` makes, reading them as they stream (nothing is extracted).
 * Several inputs (WebDataset shards) make one tree, entries in order, a later entry for a path
 * replacing an earlier one; each input's share of the file table is recorded in the metadata
 * under `tar.inputs`. Pack options are `build`'s. What is kept and refused: docs/TAR.md.
 */
export async function tarToArchive(opts: TarToArchiveOptions): Promise<TarToArchiveResult> {
  expectOptions(opts, "tarToArchive", true);
  return await convertTars(opts);
}

/**
 * Writes the tree of a directory archive as a tar (optionally gzip or zstd) that GNU tar
 * extracts to the same tree, or as WebDataset shards: `shardSize` (samples never split) or
 * `shards` (where the converted tars ended), with an output pattern like `out-%06d.tar`.
 * Archives without a file tree are refused.
 */
export async function archiveToTar(
  archive: Archive,
  opts: ArchiveToTarOptions,
): Promise<ArchiveToTarResult> {
  return await writeTars(archive, opts);
}
