"""The graph page in a real browser: headless Chromium driven by Selenium.

Skipped, with the reason, where no browser can be started; never skipped in CI, whose
.ci/run installs Debian's chromium and chromium-driver first.
"""

import json
import os
import shutil
import time

import pytest
from click.testing import CliRunner

from loopnet.cli import main
from loopnet.targets import TARGETS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


def start_browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as err:
        return None, f"selenium is not installed ({err}); pip install -e '.[test]'"
    if not CHROMIUM or not CHROMEDRIVER:
        return None, "no chromium and chromedriver here; on Debian: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,900",
                 "--host-resolver-rules=MAP * ~NOTFOUND"):  # offline: any network name fails to resolve
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options), None
    except Exception as err:  # noqa: BLE001 - any failure to start is reported as the reason
        return None, f"chromium did not start: {str(err).splitlines()[0]}"


@pytest.fixture(scope="module")
def browser():
    driver, reason = start_browser()
    if driver is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    yield driver
    driver.quit()


def write_page(tmp_path, target, *more):
    path = tmp_path / f"{target.replace('/', '_')}.html"
    result = CliRunner().invoke(main, ["trace", target, "--format", "html", "--output", str(path), *more])
    assert result.exit_code == 0, result.output
    nodes = json.loads(CliRunner().invoke(main, ["trace", target, "--format", "json"]).stdout)["nodes"]
    return path, nodes


def load(browser, path):
    browser.get(path.as_uri())
    browser.get_log("browser")  # start each page with an empty console


def severe(browser):
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def flat(array):
    return [x for item in array for x in flat(item)] if isinstance(array, list) else [array]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_node_is_drawn_with_no_console_errors_and_no_network(browser, tmp_path, target):
    path, nodes = write_page(tmp_path, target)
    load(browser, path)
    drawn = browser.find_elements("css selector", "g.node")
    assert [g.get_attribute("aria-label").split(":")[0] for g in drawn] == [n["name"] for n in nodes]
    assert len(browser.find_elements("css selector", "g.edge")) == sum(len(n["inputs"]) for n in nodes)
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert not severe(browser)


def open_node(browser, index):
    browser.find_element("css selector", f"#node-{index}").click()
    return browser.find_element("id", "panel")


def test_clicking_a_node_shows_its_grad_equal_to_the_json(browser, tmp_path):
    path, nodes = write_page(tmp_path, "mlp")
    load(browser, path)
    for index, node in enumerate(nodes):
        panel = open_node(browser, index)
        assert panel.find_element("tag name", "h2").text == node["name"]
        shown = [float(td.get_attribute("data-value")) for td in panel.find_elements("css selector", "table.grad td")]
        assert shown == ([] if node["grad"] is None else flat(node["grad"]))  # exact: full precision
        values = [float(td.get_attribute("data-value")) for td in panel.find_elements("css selector", "table.value td")]
        assert values == flat(node["value"])
        if node["loops"]:
            assert node["loops"][0]["name"] in panel.text and "the op's math" in panel.text
    assert not severe(browser)


def test_clicking_a_grad_element_lists_terms_that_add_up_to_it(browser, tmp_path):
    path, nodes = write_page(tmp_path, "mlp")
    load(browser, path)
    index = [n["name"] for n in nodes].index("W1")
    panel = open_node(browser, index)
    panel.find_element("css selector", 'button.element[data-index="0,1"]').click()
    terms = [float(row.get_attribute("data-term")) for row in panel.find_elements("css selector", "table.terms tr[data-term]")]
    total = float(panel.find_element("css selector", ".total").get_attribute("data-total"))
    grad = nodes[index]["grad"][0][1]
    assert len(terms) == len(nodes[index]["explain"]["0,1"]["terms"]) > 1
    assert sum(terms) == pytest.approx(total, rel=1e-12, abs=1e-15) and total == pytest.approx(grad, rel=1e-12)
    consumers = browser.find_elements("css selector", "g.node.consumer")
    assert [g.get_attribute("aria-label").split(":")[0] for g in consumers] == ["hidden_in"]


def test_the_keyboard_reaches_a_node_and_enter_opens_it(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    path, nodes = write_page(tmp_path, "mlp")
    load(browser, path)
    body = browser.find_element("tag name", "body")
    body.send_keys(Keys.TAB)  # the Play button first, then the nodes in topological order
    browser.switch_to.active_element.send_keys(Keys.TAB)
    active = browser.switch_to.active_element
    assert active.get_attribute("id") == "node-0"
    active.send_keys(Keys.ENTER)
    assert browser.find_element("css selector", "#panel h2").text == nodes[0]["name"]


def test_play_lights_the_nodes_in_reverse_topological_order(browser, tmp_path):
    path, nodes = write_page(tmp_path, "xor")
    load(browser, path)
    browser.find_element("id", "play").click()
    time.sleep(1.0)  # one node every 0.4 s
    lit = [g.get_attribute("id") for g in browser.find_elements("css selector", "g.node.lit")]
    assert lit[-2:] == [f"node-{len(nodes) - 2}", f"node-{len(nodes) - 1}"] and f"node-0" not in lit
    assert browser.find_element("id", "status").text.startswith("backward: ")
    browser.find_element("id", "play").click()  # stop: the lights go out
    assert not browser.find_elements("css selector", "g.node.lit") and not severe(browser)


MODEL = '''
import numpy as np
import loopnet as ln

def build():
    rng = np.random.default_rng(0)
    x = ln.Input(rng.standard_normal((12, 10)), name="x")
    W = ln.Parameter(rng.standard_normal((10, 10)), name="W")
    layer = ln.derive("Y[n,m] = tanh(sum_d X[n,d] * W[d,m])")
    cube = ln.reshape(layer(x, W, name="layer"), (3, 4, 10), name="cube")
    return ln.mean(ln.square(cube))
'''


ODD = '''
import numpy as np
import loopnet as ln

def build():
    big = ln.Parameter(np.linspace(-3.0, 3.0, 400 * 400).reshape(400, 400), name="big <!--<script>")
    odd = ln.Input(np.array([[np.nan, np.inf], [-2.0, 1.0]] * 40), name="odd")
    return ln.sum(ln.add(ln.sum(ln.square(big)), ln.sum(odd)))
'''


def test_huge_odd_and_awkwardly_named_arrays_still_draw(browser, tmp_path):
    model = tmp_path / "odd.py"
    model.write_text(ODD)
    path, nodes = write_page(tmp_path, str(model))
    load(browser, path)
    names = [n["name"] for n in nodes]
    panel = open_node(browser, names.index("big <!--<script>"))  # 160,000 values: one heatmap each
    assert len(panel.find_elements("css selector", "canvas.heatmap")) == 2
    assert "|x| up to 3:" in panel.find_element("css selector", ".legend").text
    panel = open_node(browser, names.index("odd"))
    assert "|x| up to 2: red positive, blue negative; 80 NaN or infinite" in panel.find_element(
        "css selector", ".legend").text
    assert not severe(browser)


def test_a_users_model_file_with_large_arrays_draws_heatmaps(browser, tmp_path):
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    path, nodes = write_page(tmp_path, str(model))
    load(browser, path)
    panel = open_node(browser, [n["name"] for n in nodes].index("layer"))
    assert len(panel.find_elements("css selector", "canvas.heatmap")) == 2  # 120 values and grads: too many to list
    assert "forward loop: forward" in panel.text and not severe(browser)
    panel = open_node(browser, [n["name"] for n in nodes].index("cube"))  # rank 3: one slice at a time
    choose = panel.find_element("css selector", "select.slice")
    assert [o.text for o in choose.find_elements("tag name", "option")] == ["[0, :, :]", "[1, :, :]", "[2, :, :]"]
    legend = panel.find_element("css selector", ".legend").text
    choose.find_elements("tag name", "option")[2].click()
    assert panel.find_element("css selector", ".legend").text.startswith("40 of 120 values")
    assert panel.find_element("css selector", ".legend").text != legend and not severe(browser)
