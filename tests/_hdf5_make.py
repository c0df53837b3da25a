"""Writes the HDF5 files tests/hdf5_test.ts reads, with h5py, into the directory argv[1]:
for each libver ("earliest", h5py's default; "v108"; "latest") a file <libver>.h5 with the
same datasets, and for every dataset outside skip/, <libver>/<path>.bin with numpy's
tobytes() of it. manifest.json has each dataset's dtype and shape as numpy sees them, and
where the first chunk of chunked/gzip lies in the file."""
import json, os, sys
import h5py
import numpy as np

out = sys.argv[1]
manifest = {}
rng = np.random.default_rng(7)


def compact(f, name, arr):
    tid = h5py.h5t.py_create(arr.dtype)
    space = h5py.h5s.create_simple(arr.shape)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    ds = h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, arr)


for libver in ["earliest", "v108", "latest"]:
    path = os.path.join(out, f"{libver}.h5")
    with h5py.File(path, "w", libver=libver) as f:
        f.attrs["title"] = "test file"
        f.attrs["version"] = 3
        # As Keras writes its checkpoints: a long JSON string, and a list of fixed-length names.
        f.attrs["model_config"] = json.dumps({"layers": [{"name": f"dense_{i}", "units": i} for i in range(300)]})
        f.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
        f["ints/i1"] = np.arange(-50, 50, dtype="i1")
        f["ints/u2"] = np.arange(1000, dtype="<u2")
        f["ints/be_i4"] = np.arange(-300, 300, dtype=">i4").reshape(20, 30)
        f["ints/i8"] = np.array([2**60, -(2**40), 5], dtype="<i8")
        f["floats/f4"] = rng.standard_normal((100, 37)).astype("<f4")
        f["floats/f8"] = rng.standard_normal(333)
        f["floats/f2"] = rng.standard_normal(64).astype("<f2")
        f["bool"] = rng.integers(0, 2, 77).astype(bool)
        f["strings"] = np.array([b"alpha", b"be", b"gamma-long"], dtype="S10")
        f["scalar"] = np.float64(3.25)
        f.create_dataset("empty", shape=(0, 4), dtype="f4")
        f.create_dataset("unwritten", shape=(10, 3), dtype="i2", fillvalue=-2)
        w = f.create_dataset("model/layer1/weight", data=rng.standard_normal((16, 8)).astype("f4"))
        w.attrs["scale"] = 0.5
        w.attrs["name"] = "first layer"
        w.attrs["dims"] = np.array([16, 8], dtype="i4")
        w.attrs["trainable"] = True
        w.attrs["tag"] = np.bytes_(b"fixed")
        b = f.create_dataset("model/layer1/bias", data=np.zeros(8, dtype="f4") + 0.25)
        for i in range(12):  # more than 8: dense attribute storage with libver 'latest'
            b.attrs[f"a{i:02d}"] = i * 1.5
        f["model/layer2/weight"] = rng.standard_normal((8, 4)).astype("f4")
        f["model"].attrs["epochs"] = 12
        compact(f, "compact", np.arange(24, dtype="<i2").reshape(4, 6))
        f.create_dataset("chunked/plain", data=rng.integers(0, 1000, (30, 23)).astype("i4"), chunks=(7, 5))
        f.create_dataset("chunked/gzip", data=rng.integers(0, 50, (50, 40)).astype("i4"), chunks=(16, 16),
                         compression="gzip", shuffle=True, fletcher32=True)
        f.create_dataset("chunked/gzip3d", data=rng.standard_normal((9, 10, 11)), chunks=(4, 3, 5),
                         compression="gzip", compression_opts=9)
        f.create_dataset("chunked/one_d", data=np.arange(1001, dtype="u8"), chunks=(100,), shuffle=True)
        f.create_dataset("chunked/whole", data=np.arange(60, dtype="f4").reshape(6, 10), chunks=(6, 10),
                         compression="gzip")
        m = f.create_dataset("chunked/missing", shape=(40, 40), dtype="f4", chunks=(10, 10), fillvalue=-7)
        m[0:10, 0:10] = 1.5
        m[25:35, 5:15] = rng.standard_normal((10, 10))
        # Resizable: with libver 'latest' an extensible array (one unlimited dimension, also
        # not the first) or a v2 B-tree (two) indexes the chunks; a fixed array when the
        # maximum shape is larger than the shape but limited.
        r = f.create_dataset("chunked/resizable", data=np.arange(100), chunks=(5,), maxshape=(None,))
        r.resize((2000,))
        r[1500:1700] = 7
        f.create_dataset("chunked/grow_rows", data=rng.standard_normal((30, 20)).astype("f4"), chunks=(4, 6),
                         maxshape=(None, 20), compression="gzip")
        f.create_dataset("chunked/grow_cols", data=np.arange(600, dtype="i2").reshape(20, 30), chunks=(4, 6),
                         maxshape=(20, None))
        f.create_dataset("chunked/grow_both", data=np.arange(600, dtype="i2").reshape(30, 20), chunks=(4, 6),
                         maxshape=(None, None), shuffle=True, compression="gzip", fletcher32=True)
        f.create_dataset("chunked/grow_both_plain", data=np.arange(600, dtype="<u4").reshape(30, 20),
                         chunks=(4, 6), maxshape=(None, None))
        f.create_dataset("chunked/max_larger", data=np.arange(80, dtype="i4").reshape(10, 8), chunks=(4, 4),
                         maxshape=(20, 8))
        # Chunks past index 131056 of an extensible array lie in paged data blocks.
        sparse = f.create_dataset("chunked/sparse", shape=(0,), dtype="u1", chunks=(1,), maxshape=(None,))
        sparse.resize((140000,))
        sparse[0:40] = 3
        sparse[135000:135020] = np.arange(20)
        f.create_dataset("chunked/many", data=np.arange(3000, dtype="i2"), chunks=(2,))
        # What is skipped, with the reason the test expects.
        rec = np.zeros(5, dtype=[("id", "<i4"), ("score", "<f8"), ("tag", "S3"), ("ok", "?")])
        rec["id"] = np.arange(5)
        rec["score"] = np.linspace(0, 1, 5)
        rec["tag"] = [b"a", b"bb", b"ccc", b"d", b""]
        rec["ok"] = [True, False, True, True, False]
        f["compound"] = rec
        f.create_dataset("compound_chunked", data=np.tile(rec, 40), chunks=(16,), compression="gzip",
                         shuffle=True)
        f["opaque"] = np.frombuffer(b"abcdefgh" * 4, dtype="V8")
        f["types/half"] = np.dtype("<f2")  # a committed datatype, used by a dataset
        f.create_dataset("committed", data=np.arange(12, dtype="<f2"), dtype=f["types/half"])
        f["skip/compound"] = np.zeros(3, dtype=[("a", "i4"), ("b", [("x", "f4"), ("y", "f4")])])
        f["skip/subarray"] = np.zeros(3, dtype=[("a", "i4"), ("b", "f4", (3,))])
        f.create_dataset("skip/vlen", data=["one", "two"], dtype=h5py.string_dtype())
        f["skip/soft"] = h5py.SoftLink("/floats/f4")
        f["skip/again"] = f["model/layer2"]  # a hard link to a group: walked once
        f["skip/" + "n" * 5000] = np.arange(3)  # a path the file table cannot keep
    datasets = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset) or name.startswith("skip/"):
                return
            arr = obj[()]
            arr = np.asarray(arr)
            dest = os.path.join(out, libver, name + ".bin")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as g:
                g.write(arr.tobytes())
            datasets[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape)}
            if arr.dtype.fields:
                datasets[name]["fields"] = [{"name": k, "dtype": v[0].str, "offset": v[1]}
                                            for k, v in arr.dtype.fields.items()]
        f.visititems(visit)
        info = f["chunked/gzip"].id.get_chunk_info(0)
        chunk = {"offset": info.byte_offset, "size": info.size}
    manifest[libver] = {"datasets": datasets, "gzip_chunk": chunk}

# A user block before the superblock (addresses are then relative to the superblock's place).
for libver in ["earliest", "latest"]:
    with h5py.File(os.path.join(out, f"userblock-{libver}.h5"), "w", libver=libver, userblock_size=1024) as f:
        f["a/x"] = np.arange(300, dtype="<i4")
        f.create_dataset("a/y", data=np.arange(300, dtype="<f8"), chunks=(64,), compression="gzip")
    with open(os.path.join(out, f"userblock-{libver}.h5"), "r+b") as g:
        g.write(b"a user block, not HDF5")

# A group of 30,000 links: its fractal heap has indirect blocks inside indirect blocks.
with h5py.File(os.path.join(out, "biggroup.h5"), "w", libver="latest") as f:
    f["x"] = np.arange(3)
    g = f.create_group("many")
    for i in range(30000):
        g[f"link_{i:06d}"] = h5py.SoftLink("/x")
    for i in range(5):
        g[f"z{i}"] = np.full(4, i, dtype="<i2")

with open(os.path.join(out, "manifest.json"), "w") as g:
    json.dump(manifest, g, indent=1)
