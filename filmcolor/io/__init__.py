"""Media input and output: probe a source, decode it to frames, encode frames, remux with the audio.

The chain the pipeline runs::

    from filmcolor.io.probe import probe
    from filmcolor.io.decode import decode
    from filmcolor.io.encode import encode
    from filmcolor.io.remux import build_remux_args, ffmpeg_exe, run_remux, verify_output

    info  = probe(src)                                   # SourceInfo
    stats = encode(stages(decode(src)), tmp_video, info) # video-only .mp4, source pts kept
    run_remux(build_remux_args(tmp_video, src, tmp_out, info, ffmpeg=ffmpeg_exe()))
    verify_output(tmp_out, stats.frames, stats.duration)

Import from the submodules. This package re-exports nothing on purpose: the functions ``probe``,
``decode`` and ``encode`` share their modules' names, and re-exporting them here would make
``filmcolor.io.decode`` mean the function rather than the module (breaking ``mock.patch`` paths).

PyAV (bundled FFmpeg libraries) decodes and encodes; only the remux runs the ``ffmpeg`` program.
"""
