"""Image-folder input: frame numbers, frame rates and PoseTrack21 image records on real data."""

from __future__ import annotations

import json
import shutil

import cv2
import pytest
from conftest import shared_path

from kpr_track.errors import InputError
from kpr_track.io.frames import ImageFolderReader, open_frames
from kpr_track.io.video import VideoReader

POSETRACK = ("data", "posetrack18-sample")


def test_mot_sequence_folder_keeps_image_numbers_and_frame_rate():
    seq = shared_path("data", "MOT17-mini", "train", "MOT17-05-FRCNN")
    reader = open_frames(seq, max_frames=4)
    assert isinstance(reader, ImageFolderReader)
    assert reader.frame_ids == [1, 2, 3, 4] and len(reader) == 4
    assert (reader.info.width, reader.info.height, reader.info.fps) == (640, 480, 14.0)
    frames = list(reader)
    assert len(frames) == 4 and frames[0].shape == (480, 640, 3)
    assert (frames[3] == cv2.imread(str(seq / "img1" / "000004.jpg"))).all()
    assert reader.images[2]["file_name"] == "MOT17-05-FRCNN/img1/000002.jpg"


def test_folder_numbered_from_zero_starts_at_frame_1(tmp_path):
    source = shared_path(*POSETRACK, "videos", "000001_mpiinew_test")
    for n in (0, 2, 10):  # sorted by number, not by name: 10 after 2
        shutil.copy(source / f"00000{min(n, 4)}.jpg", tmp_path / f"frame_{n}.jpg")
    reader = ImageFolderReader(tmp_path)
    assert reader.frame_ids == [1, 3, 11]
    assert [p.name for p in reader.files] == ["frame_0.jpg", "frame_2.jpg", "frame_10.jpg"]
    assert reader.info.fps == 25.0


def test_video_file_still_opens_as_a_video():
    video = shared_path(*POSETRACK, "videos", "000001_mpiinew_test", "000001_mpiinew_test.mp4")
    assert isinstance(open_frames(video), VideoReader)


def test_posetrack_json_gives_image_records():
    root = shared_path(*POSETRACK)
    gt = root / "annotations" / "val" / "003418_mpii_test.json"
    reader = open_frames(root / "images" / "val" / "003418_mpii_test", gt)
    assert reader.frame_ids == [1]
    record = reader.images[1]
    expected = json.loads(gt.read_text())["images"][0]
    assert record["id"] == 10034180000 == expected["id"]
    assert record["file_name"] == "images/val/003418_mpii_test/000000.jpg"
    assert record["vid_id"] == "003418" and record["frame_id"] == expected["frame_id"]
    assert record["ignore_regions_x"] == expected["ignore_regions_x"]


def _copy_posetrack_video(tmp_path):
    root = shared_path(*POSETRACK)
    folder = tmp_path / "003418_mpii_test"
    shutil.copytree(root / "images" / "val" / "003418_mpii_test", folder)
    return folder, root / "annotations" / "val" / "003418_mpii_test.json"


def test_image_not_in_posetrack_json_is_an_error(tmp_path):
    folder, gt = _copy_posetrack_video(tmp_path)
    shutil.copy(folder / "000000.jpg", folder / "000001.jpg")
    with pytest.raises(InputError, match=r"1 image\(s\) not listed in .*003418_mpii_test.json"):
        ImageFolderReader(folder, gt)


def test_image_listed_in_posetrack_json_but_missing_is_an_error(tmp_path):
    folder, gt = _copy_posetrack_video(tmp_path)
    (folder / "000000.jpg").rename(folder / "other.jpg")
    with pytest.raises(InputError, match=r"images\[0\].file_name: .*000000.jpg not found"):
        ImageFolderReader(folder, gt)


def test_posetrack_json_of_another_video_is_an_error():
    root = shared_path(*POSETRACK)
    other = root / "annotations" / "val" / "009473_mpii_test.json"
    with pytest.raises(InputError, match="is a frame of video folder 009473_mpii_test/, not of"):
        ImageFolderReader(root / "images" / "val" / "003418_mpii_test", other)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([], "no images"),
        (["cover.jpg"], "expected a frame number in the file name"),
        (["a_1.jpg", "b_001.jpg"], "frame number 1 also in"),
    ],
)
def test_bad_image_folders(tmp_path, names, message):
    image = shared_path(*POSETRACK, "videos", "000001_mpiinew_test", "000000.jpg")
    for name in names:
        shutil.copy(image, tmp_path / name)
    with pytest.raises(InputError, match=message):
        ImageFolderReader(tmp_path)


def test_posetrack_json_with_a_video_file_is_an_error():
    video = shared_path(*POSETRACK, "videos", "000001_mpiinew_test", "000001_mpiinew_test.mp4")
    gt = shared_path(*POSETRACK, "annotations", "val", "003418_mpii_test.json")
    with pytest.raises(InputError, match="--posetrack-json needs the video's image folder"):
        open_frames(video, gt)
