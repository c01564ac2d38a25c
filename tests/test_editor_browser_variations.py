"""The editor page's Variations tab and animated download in headless Chromium (the browser of
tests/test_editor_browser.py): pick a gallery face, keep level 2 of 2, make variations and see the
strip the API computes; then download a GIF sweep and check its bytes arrived in the page."""

import numpy as np
import pytest

from tests import editor_testing as ed
from tests.test_editor_browser import browser as browser_fixture  # noqa: F401
from tests.test_editor_browser import shown, wait

pytest.importorskip('flask')


def test_variations_tab_and_gif_download(browser_fixture, tmp_path_factory):  # noqa: F811
    from glow_tf.editor.app import create_app
    from glow_tf.tools.levels import variations

    page = browser_fixture
    editor = ed.make_editor(tmp_path_factory)
    with ed.serve(create_app(editor)) as base:
        page.get(base + '/')
        body = lambda d: d.find_element('tag name', 'body')  # noqa: E731
        wait(page, lambda d: body(d).get_attribute('data-ready') == '1')
        page.find_elements('css selector', '#gallery img.thumb')[2].click()
        wait(page, lambda d: body(d).get_attribute('data-face') == 'gallery-008305')
        face = shown(page, 'input-img')

        page.find_element('id', 'tab-variations').click()
        keep = page.find_elements('css selector', '#keep-levels input')
        assert [k.is_selected() for k in keep] == [False, True]  # default: all but level 1
        page.find_element('id', 'make-variations').click()
        wait(page, lambda d: body(d).get_attribute('data-variations') == '6')
        caption = page.find_element('id', 'result-caption').text
        seed = int(caption.rsplit('seed ', 1)[1])
        assert 'keep levels 2, T = 0.5' in caption
        strip = [
            ed.decode_data_url(img.get_attribute('src'))
            for img in page.find_elements('css selector', '#variations img')
        ]
        want = variations(editor.flow, face[None], [2], 6, 0.5, seed)[0]
        np.testing.assert_array_equal(np.stack(strip), want)

        page.find_element('id', 'tab-edit').click()
        page.find_element(
            'css selector', 'button.animate[data-kind="sweep"][data-format="gif"]'
        ).click()
        wait(
            page,
            lambda d: (body(d).get_attribute('data-downloaded') or '').endswith(
                tuple('0123456789')
            ),
        )
        name, size = body(page).get_attribute('data-downloaded').split()
        assert name == 'glow-sweep-Smiling.gif' and int(size) > 1000
        assert 'glow-sweep-Smiling.gif' in page.find_element('id', 'status').text
