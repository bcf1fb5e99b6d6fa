"""Make docs/trace-mlp.png, the README's picture of the graph page.

    python docs/screenshot.py            # needs chromium, chromedriver and selenium

It writes `python cli.py trace mlp --format html`, opens it in headless Chromium at a
laptop's size (1440 x 900, 100% zoom), clicks the node W1 and its gradient element [0,1]
(the terms of that element), and saves the window.
"""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from test_page_browser import start_browser  # noqa: E402 - the browser the tests use


def main(out=os.path.join(ROOT, "docs", "trace-mlp.png")):
    with tempfile.TemporaryDirectory() as tmp:
        page = os.path.join(tmp, "mlp.html")
        subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "trace", "mlp", "--format", "html",
                        "--output", page], check=True)
        browser, reason = start_browser()
        if browser is None:
            sys.exit(f"cannot take the screenshot: {reason}")
        try:
            browser.get("file://" + page)
            browser.find_element("css selector", 'g.node[aria-label^="W1:"]').click()
            browser.find_element("css selector", 'button.element[data-index="0,1"]').click()
            browser.save_screenshot(out)
        finally:
            browser.quit()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
