"""Typed errors. Every message is one actionable line; ``__main__`` prints it and exits non-zero."""

from __future__ import annotations


class FilmcolorError(Exception):
    """Base class of every error filmcolor raises on purpose (bad input, missing weights...)."""

    exit_code: int = 1


class SourceOpenError(FilmcolorError):
    """The input does not exist, is not a video or image, or has no decodable video stream."""

    exit_code = 2


class DecodeError(FilmcolorError):
    """The video stream could not be decoded part-way through."""

    exit_code = 3


class WeightsError(FilmcolorError):
    """A weights file is missing, corrupt, or does not fit the model."""

    exit_code = 4


class ModelNotFoundError(FilmcolorError):
    """No model is registered under that name."""

    exit_code = 4


class OutputError(FilmcolorError):
    """The output exists (and --overwrite was not given) or cannot be written."""

    exit_code = 5


class EncodeError(FilmcolorError):
    """The encoder failed."""

    exit_code = 6


class RemuxError(FilmcolorError):
    """FFmpeg failed to join the coloured video with the original audio/subtitles."""

    exit_code = 6

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


class JobStateError(FilmcolorError):
    """A job directory is locked, corrupt, or was made with different settings."""

    exit_code = 7


class ConfigError(FilmcolorError):
    """An option value is invalid."""

    exit_code = 2


class JobInterrupted(FilmcolorError):
    """Ctrl-C or SIGTERM stopped a job between two consistent states; it can be resumed."""

    exit_code = 130

    def __init__(self, job_dir: str) -> None:
        super().__init__(f"interrupted; resume with: filmcolor resume {job_dir}")
        self.job_dir = job_dir
