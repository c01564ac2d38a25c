#!/usr/bin/env python
"""Screenshot of the face editor in headless Chromium (docs/images/editor_screenshot.png).

    python demo.py &                                   # the shipped model on 127.0.0.1:8000
    python docs/images/make_editor_screenshot.py       # picks a gallery face, moves two sliders

Needs Debian's chromium and chromium-driver (scripts/install.sh installs them) and selenium.
"""

import argparse
import os
import shutil
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--url', default='http://127.0.0.1:8000/')
    p.add_argument('--out', default=os.path.join(REPO, 'docs', 'images', 'editor_screenshot.png'))
    p.add_argument('--face', type=int, default=3, help="Which gallery thumbnail (0-based).")
    p.add_argument('--sliders', default='Smiling=1,Young=-0.6')
    p.add_argument('--size', default='1400,820')
    args = p.parse_args(argv)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix='glow-shot-')
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which('chromium') or '/usr/bin/chromium'
    for a in (
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        f'--user-data-dir={profile}',
        f'--window-size={args.size}',
        '--hide-scrollbars',
    ):
        opts.add_argument(a)
    driver = webdriver.Chrome(
        service=Service(shutil.which('chromedriver') or '/usr/bin/chromedriver'), options=opts
    )
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(args.url)
        wait.until(lambda d: d.find_element('tag name', 'body').get_attribute('data-ready') == '1')
        thumb = driver.find_elements('css selector', '#gallery img.thumb')[args.face]
        face_id = thumb.get_attribute('data-id')
        thumb.click()
        wait.until(
            lambda d: d.find_element('tag name', 'body').get_attribute('data-face') == face_id
        )
        for item in filter(None, args.sliders.split(',')):
            name, value = item.split('=')
            el = driver.find_element('css selector', f'input[data-attr="{name}"]')
            driver.execute_script(
                "arguments[0].value = arguments[1];arguments[0].dispatchEvent(new Event('input'));",
                el,
                value,
            )
            wait.until(lambda d: name in d.find_element('id', 'result-caption').text)
        time.sleep(0.5)
        driver.save_screenshot(args.out)
        print(f"screenshot -> {args.out}")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
