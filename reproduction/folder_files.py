"""What folder mode (``reproduction/folder.py``) reads of a folder of images, the run each of its
files becomes, and what each run was made from.

The rules (docs/command_line.md, "A folder of images"):

- An entry of the folder (not of its subfolders) is an image file when its name ends in an
  extension of a format a one-image run reads: every format Pillow opens (``.gif`` too). Names
  starting with a dot are hidden and left out, as ``ls`` leaves them out (macOS's ``._x.png`` holds
  a file's attributes, not an image). An entry with an image's extension that is no regular file
  (a broken link, a loop of links, a folder, a pipe) is reported with what it is, never read.
- Every file is a run named after it: ``photo.png`` is the run ``photo``; where that name is not
  the file's alone (``a.png`` and ``a.jpg``; or ``a_png.tif`` beside them), the run keeps the
  extension (``a_png``, ``a_jpg``, ``a_png_tif``); a name too long for the run's files is cut and
  given a digest of the whole file name (``<start>~<12 hex digits>``).
- A run records what it was made from in ``<out_dir>/<run>_input.json``: the file's size in bytes
  and the SHA-256 of its bytes.
"""

import collections
import dataclasses
import errno
import hashlib
import json
import os

from PIL import Image

from recovery.settings import MAX_CKPT_LENGTH
from utils.atomic_files import printable_path, write_json
from utils.errors import InputError
from utils.image_io import IMAGE_EXTENSIONS

RECORD_SUFFIX = "_input.json"
DIGEST_HEX_DIGITS = 12  # of a cut run name: 48 bits, no clash among any folder's names in practice
READ_CHUNK_BYTES = 1 << 20


def image_extensions():
    """The extensions (lower case, with their dot) of every format a one-image run reads: those
    Pillow opens, and ``utils.image_io.IMAGE_EXTENSIONS``."""
    Image.init()
    opened = {extension for extension, kind in Image.registered_extensions().items() if kind in Image.OPEN}
    return tuple(sorted(opened | set(IMAGE_EXTENSIONS)))


@dataclasses.dataclass
class FolderListing:
    """A folder's entries as folder mode takes them: ``images`` (paths of the image files, sorted by
    name), ``not_files`` (``{path: why}``: entries with an image's extension that are no regular
    file) and ``hidden`` (paths of the hidden entries with an image's extension, left out)."""

    images: list
    not_files: dict
    hidden: list


def not_a_file(path):
    """Why ``path`` is no regular file to read (``a broken link``, ``a loop of links``, ``a folder``...),
    or None for a regular file or a link to one."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of links"
        return "a broken link" if os.path.islink(path) else f"gone ({exc.strerror})"
    if os.path.isfile(path):
        return None
    return "a folder" if os.path.isdir(path) else f"not a regular file (mode {oct(mode)})"


def list_folder(directory):
    """The :class:`FolderListing` of ``directory``; InputError when it holds no entry with an
    image's extension that is not hidden."""
    extensions = image_extensions()
    listing = FolderListing([], {}, [])
    for name in sorted(os.listdir(directory)):
        if not name.lower().endswith(extensions):
            continue
        path = os.path.join(directory, name)
        if name.startswith("."):
            listing.hidden.append(path)
        elif (why := not_a_file(path)) is not None:
            listing.not_files[path] = f"not read: {why}"
        else:
            listing.images.append(path)
    if not listing.images and not listing.not_files:
        raise InputError(f"no image file in {printable_path(directory)}/ (names ending in an extension of a format "
                         f"Pillow reads, such as .png, .jpg, .tif, .gif; hidden names left out)")
    return listing


def run_names(paths):
    """The run name of each file of ``paths`` (of one folder): unique among them, and the same on
    every call for the same files (see the module's rules).

    >>> run_names(["photos/cat.png", "photos/dog.png", "photos/dog.jpg", "photos/dog_png.tif"])
    ['cat', 'dog_png', 'dog_jpg', 'dog_png_tif']
    """
    names = [os.path.basename(path) for path in paths]
    stems = [os.path.splitext(name)[0] for name in names]
    # An extension holds no "_", so the last "_" of an extended name splits it back: unique.
    extended = [f"{stem}_{os.path.splitext(name)[1][1:]}" for stem, name in zip(stems, names)]
    taken = set(extended)
    counts = collections.Counter(stems)
    plain = [stem if counts[stem] == 1 and stem not in taken else own for stem, own in zip(stems, extended)]
    return [_fitting_name(run, name) for run, name in zip(plain, names)]


def _fitting_name(run, file_name):
    """``run``, or, when it is too long for a run name, its start and a digest of ``file_name``."""
    raw = os.fsencode(run)
    if len(raw) <= MAX_CKPT_LENGTH:
        return run
    digest = hashlib.sha256(os.fsencode(file_name)).hexdigest()[:DIGEST_HEX_DIGITS]
    return os.fsdecode(raw[:MAX_CKPT_LENGTH - DIGEST_HEX_DIGITS - 1]) + "~" + digest


def input_record(path):
    """What the file ``path`` is now: ``{"bytes": its size, "sha256": the digest of its bytes}``."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(READ_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def describe_record(record):
    return f"{record['bytes']:,} bytes, SHA-256 {record['sha256'][:DIGEST_HEX_DIGITS]}..."


def record_path(spec):
    """``<out_dir>/<ckpt>_input.json`` of the RunSpec ``spec``."""
    return os.path.join(spec.out_dir, spec.ckpt + RECORD_SUFFIX)


def read_record(spec):
    """The input record of the run ``spec``: ``{"bytes", "sha256"}``, or None when it has none that can be
    read as one (its run is then judged as one made without a record)."""
    try:
        with open(record_path(spec)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not (isinstance(record, dict) and isinstance(record.get("bytes"), int) and isinstance(record.get("sha256"), str)):
        return None
    return {"bytes": record["bytes"], "sha256": record["sha256"]}


def write_record(spec, path, record):
    write_json(record_path(spec), {**record, "file": printable_path(os.path.abspath(path))})


def check_apart(out_dir, folder):
    """InputError unless ``out_dir`` and the folder of images ``folder`` are apart: neither is the
    other or lies inside it, links followed. The runs' outputs are images: in the folder they would
    be read as inputs by the next command, and could be written over an input of the same name."""
    out, images = os.path.realpath(out_dir), os.path.realpath(folder)
    if out == images:
        relation = "is"
    elif os.path.commonpath([out, images]) == images:
        relation = "lies inside"
    elif os.path.commonpath([out, images]) == out:
        relation = "holds"
    else:
        return
    raise InputError(f"`out_dir` {printable_path(out_dir)} {relation} the folder of images {printable_path(folder)}: "
                     f"give an `out_dir` apart from it (outputs are images too, and would be read as inputs or "
                     f"written over them)")
