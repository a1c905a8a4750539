"""A camera path and trajectories from the command line: the ``--camera`` / ``--trajectory`` flags of
``i2v generate`` and ``i2v submit``, each the text itself or ``@FILE`` (a ``.json`` file holds the list /
dict form, read with json). What they say is checked by ``i2v.motion`` when the request is resolved."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidRequestError

MOTION_FILE_BYTES = 1 << 20  # the largest --camera / --trajectory @FILE read


def add_motion_arguments(p) -> None:
    """--camera and --trajectory (``i2v generate`` and ``i2v submit``): text, or @FILE."""
    p.add_argument("--camera", "--camera-path", dest="camera_path", default=None, metavar="PATH",
                   help="a keyframed camera path, 'TIME: MOVES; ...', e.g. --camera '1s: pan right 0.25; 1.5s: zoom in "
                        "1.5' (pan / tilt: travel in frame widths / heights, zoom: magnification; linear between "
                        "keyframes, held after the last); @FILE reads it from a file, a .json file as a list of "
                        "{\"time\": 1, \"pan\": 0.25} keyframes (the models that take one list 'camera path' in "
                        "`i2v models`)")
    p.add_argument("--trajectory", default=None, metavar="PATHS",
                   help="where objects of IMAGE go, 'NAME: x,y -> x,y; ...' in fractions of the frame (0,0 top left), "
                        "e.g. --trajectory 'red ball: 0.3,0.5 -> 0.7,0.5; boat: 0.2,0.8 -> 0.2,0.6' (the first "
                        "point is on the object in IMAGE; '1s 0.7,0.5' times a point); @FILE reads it from a file, a "
                        ".json file as {\"red ball\": [[0.3, 0.5], [0.7, 0.5]]} (the models that take one list "
                        "'trajectory' in `i2v models`)")


def read_motion_argument(flag: str, value: str | None):
    """A --camera / --trajectory value: the text itself, or with ``@FILE`` the file's text (a ``.json``
    file: its list or dict, read with json). A file that cannot be read is an InvalidRequestError."""
    if value is None or not value.startswith("@"):
        return value
    if not value[1:].strip():
        raise InvalidRequestError(f"{flag} @FILE: name the file after the @")
    path = Path(value[1:]).expanduser()
    try:
        if path.is_file() and path.stat().st_size > MOTION_FILE_BYTES:
            raise InvalidRequestError(f"{flag} {value}: larger than {MOTION_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidRequestError(f"{flag} {value}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"{flag} {value}: cannot read it ({exc})") from None
    if path.suffix.lower() == ".json":
        from ..motion.camera_path import load_json

        data = load_json(text, f"{flag} {value}")
        if data is None:
            raise InvalidRequestError(f"{flag} {value}: the file holds null, not a path")
        return data
    if not text.strip():
        raise InvalidRequestError(f"{flag} {value}: the file is empty")
    return text.strip()


def read_motion_arguments(args) -> None:
    """Replace ``args.camera_path`` / ``args.trajectory`` given as @FILE by what the file holds."""
    for flag, name in (("--camera", "camera_path"), ("--trajectory", "trajectory")):
        setattr(args, name, read_motion_argument(flag, getattr(args, name)))
