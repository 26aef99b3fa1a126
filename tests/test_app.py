"""The Streamlit page (`denoise_jax/app.py`) through `streamlit.testing.v1.AppTest`, and its
pure helpers; plus the `app` command's arguments and command line (no server started)."""

from __future__ import annotations

import argparse
import io
import os

import numpy as np
import pytest
from PIL import Image as PILImage
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from denoise_jax import app, app_cmd, pretrained
from denoise_jax.errors import UserError
from denoise_jax.images import decode_image

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "denoise_jax", "app.py")


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _page() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120)


def _upload(at: AppTest, name: str, data: bytes, mime: str = "image/png") -> AppTest:
    at.radio(key="source").set_value("Upload").run()
    at.get("file_uploader")[0].set_value((name, data, mime))
    return at.run()


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_default_page_shows_sample_noise_and_higher_psnr_after_denoising():
    at = _page().run()
    assert not at.exception
    assert not at.error
    values = _metrics(at)
    noisy = float(values["PSNR noisy"].split()[0])
    denoised = float(values["PSNR denoised"].split()[0])
    assert denoised > noisy + 2.0, values
    assert 0 < float(values["SSIM noisy"]) < float(values["SSIM denoised"]) <= 1
    assert values["Runtime"].endswith(" s")
    assert len(at.get("download_button")) == 1
    # it opens on the best shipped model for a colour photo
    assert at.radio(key="family").value == "Pretrained model"
    assert at.selectbox(key="pretrained_3").value == pretrained.default_for(3)
    # at the self-ensemble its config asks for; camera's own is none
    folder = pretrained.find(pretrained.default_for(3))
    assert at.select_slider(key=f"ensemble_{folder}").value == 2
    at.selectbox(key="pretrained_3").set_value("camera").run()
    assert not at.exception
    assert at.select_slider(key=f"ensemble_{pretrained.find('camera')}").value == 1


def test_sample_choice_and_noise_level_change_the_scores():
    at = _page().run()
    at.selectbox(key="sample").set_value("camera")  # grey photo
    at.sidebar.select_slider(key="work_crop").set_value(256)
    at.slider(key="sigma255").set_value(50).run()
    assert not at.exception and not at.error
    values = _metrics(at)
    noisy = float(values["PSNR noisy"].split()[0])
    assert 13 < noisy < 16  # sigma 50/255 -> about 14.2 dB
    assert float(values["PSNR denoised"].split()[0]) > noisy + 3.0
    assert any("256×256, grey" in c.value for c in at.caption)
    assert at.selectbox(key="pretrained_1").value == pretrained.default_for(1)  # grey model


def test_corrupt_upload_is_one_friendly_error_not_an_exception():
    at = _upload(_page().run(), "x.png", b"junk")
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "x.png" in message and "\n" not in message
    assert not at.metric


def test_oversize_upload_shows_the_limit():
    previous = st_config.get_option("server.maxUploadSize")
    st_config.set_option("server.maxUploadSize", 1)
    try:
        at = _upload(_page().run(), "big.png", b"\x89PNG" + bytes(1_100_000))
    finally:
        st_config.set_option("server.maxUploadSize", previous)
    assert not at.exception
    assert len(at.error) == 1
    assert "the limit is 1 MB" in at.error[0].value


def test_upload_with_alpha_denoises_and_keeps_alpha_in_the_download():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (48, 40, 4), dtype=np.uint8)
    at = _upload(_page().run(), "a.png", _png(rgba))
    assert not at.exception and not at.error
    assert [m.label for m in at.metric] == ["Runtime"]  # no reference, no scores
    out = decode_image(app.encode_png(np.full((48, 40, 3), 0.5, np.float32), rgba[..., 3], 8),
                       "out.png")
    np.testing.assert_array_equal(out.alpha, rgba[..., 3])


def test_missing_workdir_is_a_user_error_on_the_page(tmp_path):
    at = _page().run()
    at.radio(key="family").set_value("Training workdir").run()
    assert not at.exception and not at.error
    assert any("workdir" in i.value for i in at.info)
    at.text_input(key="workdir").set_value(str(tmp_path / "nope")).run()
    assert not at.exception
    assert len(at.error) == 1 and "nope" in at.error[0].value


def test_pixel_limit_reads_the_header_only():
    big = _png(np.zeros((700, 700), np.uint8))
    app.check_upload("ok.png", big, max_mb=50, max_pixels=500_000)  # 0.49 MP: fine
    with pytest.raises(UserError, match="megapixels; the limit is 0.4 MP"):
        app.check_upload("big.png", big, max_mb=50, max_pixels=400_000)
    with pytest.raises(UserError, match="empty"):
        app.decode_upload("e.png", b"", max_mb=50)


def test_compare_crop_and_outline_helpers():
    before = np.zeros((4, 10, 1), np.float32)
    after = np.ones((4, 10, 1), np.float32)
    wipe = app.compare(before, after, 0.5, "wipe")
    assert wipe[:, :4].min() == 1 and wipe[:, 6:].max() == 0  # divider at columns 4-5
    np.testing.assert_allclose(app.compare(before, after, 0.25, "blend"), 0.25)
    assert app.crop_box((100, 200, 3), 1.0, 0.0, 64) == (0, 136, 64)
    assert app.crop_box((20, 30, 3), 0.5, 0.5, 64) == (0, 4, 20)
    assert app.zoom(np.zeros((100, 100, 3)), (0, 0, 64)).shape == (256, 256, 3)
    framed = app.outline(np.zeros((10, 10, 3), np.float32), (2, 2, 6), width=1)
    assert framed[2, 4, 0] == 1 and framed[4, 4].max() == 0
    assert app.to_display(np.full((2, 2, 1), 0.5)).shape == (2, 2)
    assert app.noise_spec("gaussian", 25) == "gaussian:25"
    assert app.noise_spec("camera", 0) == "camera"


def test_app_command_line_and_port_checks():
    parser = argparse.ArgumentParser()
    app_cmd.add_arguments(parser)
    args = parser.parse_args(["--port", "8600"])
    assert (args.port, args.address, args.max_upload_mb) == (8600, "127.0.0.1", 50)
    cmd = app_cmd.command(8600)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == app_cmd.APP_PATH
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--server.headless"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.maxUploadSize"] == "50"
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with pytest.raises(UserError, match="pick another with --port"):
            app_cmd.run(parser.parse_args(["--port", str(taken)]))


def test_training_workdir_denoises_on_the_page(tmp_path):
    from denoise_jax import train_cmd

    repo = os.path.dirname(os.path.dirname(APP))
    config = os.path.join(repo, "experiments", "skimage_gauss.py") + ":tiny"
    assert train_cmd.main(["denoise-jax train", f"--config={config}", f"--workdir={tmp_path}"]) == 0
    at = _page().run()
    at.sidebar.select_slider(key="work_crop").set_value(256)
    at.radio(key="family").set_value("Training workdir").run()
    at.text_input(key="workdir").set_value(f"{tmp_path}@latest").run()
    assert not at.exception and not at.error
    values = _metrics(at)
    assert {"PSNR noisy", "PSNR denoised", "Runtime"} <= set(values)
    assert any(str(tmp_path) in c.value for c in at.caption)
