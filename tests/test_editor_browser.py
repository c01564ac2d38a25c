"""The face editor in a real browser: headless Chromium (Debian's chromium + chromium-driver,
installed by scripts/install.sh) driven by Selenium loads the page from a real server, picks a
gallery face, moves a slider with the keyboard and sees the shown image change, then uploads a
photo through the file input and sees it aligned and encoded; a photo without a face shows a
visible notice."""

import os
import shutil
import tempfile

import numpy as np
import pytest

from tests import editor_testing as ed

pytest.importorskip('flask')
pytest.importorskip('cv2')
webdriver = pytest.importorskip('selenium.webdriver')

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'


@pytest.fixture(scope='module')
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(
            "chromium / chromedriver not installed: run `bash scripts/install.sh` (as root "
            "it apt-installs chromium and chromium-driver)"
        )
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix='glow-editor-chromium-')
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        f'--user-data-dir={profile}',
        '--window-size=1300,900',
    ):
        opts.add_argument(arg)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})  # the page's console, read below
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope='module')
def page(browser, tmp_path_factory):
    from glow_tf.editor.app import create_app

    app = create_app(ed.make_editor(tmp_path_factory))
    with ed.serve(app) as base:
        browser.get(base + '/')
        wait(
            browser, lambda d: d.find_element('tag name', 'body').get_attribute('data-ready') == '1'
        )
        yield browser


def wait(driver, cond, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(cond)


def shown(driver, element_id):
    """The PNG an <img> shows, decoded (uint8 [H, W, 3]), or None."""
    src = driver.find_element('id', element_id).get_attribute('src') or ''
    return ed.decode_data_url(src) if src.startswith('data:image/png') else None


def test_opens_with_a_face_selected_and_a_quiet_console(page):
    """A new user's first move, a slider, edits a face at once: the page has already selected
    the first gallery face (no click), and loading it logged no error (no 404, e.g. favicon)."""
    from selenium.webdriver.common.keys import Keys

    body = page.find_element('tag name', 'body')
    assert body.get_attribute('data-face') == 'gallery-' + ed.GALLERY[0].split('.')[0]
    first = page.find_elements('css selector', '#gallery img.thumb')[0]
    assert 'selected' in first.get_attribute('class').split()
    start = shown(page, 'result-img')
    np.testing.assert_array_equal(start, shown(page, 'input-img'))
    severe = [e for e in page.get_log('browser') if e['level'] == 'SEVERE']
    assert not severe, severe

    young = page.find_element('css selector', 'input[data-attr="Young"]')
    young.send_keys(Keys.ARROW_LEFT)  # focus is given by send_keys; no click on the page's faces
    for _ in range(9):
        young.send_keys(Keys.ARROW_LEFT)
    wait(page, lambda d: 'Young -0.50' in d.find_element('id', 'result-caption').text)
    assert (shown(page, 'result-img') != start).mean() > 0.2
    page.find_element('id', 'reset').click()
    wait(page, lambda d: np.array_equal(shown(d, 'result-img'), start))
    assert not [e for e in page.get_log('browser') if e['level'] == 'SEVERE']


def test_pick_a_face_and_move_a_slider(page):
    from selenium.webdriver.common.keys import Keys

    thumbs = page.find_elements('css selector', '#gallery img.thumb')
    assert len(thumbs) == len(ed.GALLERY)
    sliders = page.find_elements('css selector', '#sliders input[type=range]')
    assert {s.get_attribute('data-attr') for s in sliders} >= {'Smiling', 'Male', 'Young'}
    thumbs[1].click()
    wait(
        page,
        lambda d: d.find_element('tag name', 'body').get_attribute('data-face') == 'gallery-008201',
    )
    wait(page, lambda d: shown(d, 'result-img') is not None)
    before = shown(page, 'result-img')
    np.testing.assert_array_equal(before, shown(page, 'input-img'))  # nothing moved yet: the input
    np.testing.assert_array_equal(shown(page, 'recon-img'), shown(page, 'input-img'))

    smile = page.find_element('css selector', 'input[data-attr="Smiling"]')
    smile.click()  # the thumb jumps to the click point (the middle: 0)
    for _ in range(16):
        smile.send_keys(Keys.ARROW_RIGHT)  # +0.05 each, one input event each
    wait(
        page,
        lambda d: (
            float(
                d.find_element('css selector', 'input[data-attr="Smiling"]').get_attribute('value')
            )
            >= 0.75
        ),
    )
    wait(page, lambda d: 'Smiling +0.80' in d.find_element('id', 'result-caption').text)
    after = shown(page, 'result-img')
    assert after.shape == before.shape and (after != before).mean() > 0.2
    # the download link carries the shown image
    assert page.find_element('id', 'download').get_attribute('href') == page.find_element(
        'id', 'result-img'
    ).get_attribute('src')

    page.find_element('id', 'reset').click()
    wait(page, lambda d: np.array_equal(shown(d, 'result-img'), before))


def test_upload_a_photo(page, tmp_path):
    from PIL import Image

    photo = tmp_path / 'holiday photo.jpg'
    Image.fromarray(ed.photo_with_face(angle=-10, scale=2.0)).save(photo, quality=90)
    old_input = page.find_element('id', 'input-img').get_attribute('src')
    page.find_element('id', 'file').send_keys(str(photo))
    wait(
        page,
        lambda d: (
            d.find_element('tag name', 'body').get_attribute('data-uploaded') or ''
        ).startswith('upload-'),
    )
    assert page.find_element('id', 'input-img').get_attribute('src') != old_input
    status = page.find_element('id', 'status').text
    assert 'holiday photo.jpg' in status and 'aligned by the eyes' in status and 'encoded' in status
    assert not page.find_element('id', 'notice').is_displayed()
    assert shown(page, 'input-img').shape == (16, 16, 3)

    blank = tmp_path / 'wall.png'
    Image.fromarray(np.full((240, 320, 3), 200, np.uint8)).save(blank)
    page.find_element('id', 'file').send_keys(str(blank))
    wait(page, lambda d: d.find_element('id', 'notice').is_displayed())
    assert 'No face found' in page.find_element('id', 'notice').text
