// Open the demo page in headless Chromium, generate clips, and report what the page rendered.
//
//   node check_page.mjs URL SCREENSHOT.png
//
// Prints one JSON object: the model list, the summary, the caption, the video element's state and
// pixel statistics of the frame it shows, every request the page made, and console errors.
// tests/demo/test_browser.py runs it and checks the report. Chromium is the system's (CHROMIUM,
// default /usr/bin/chromium): playwright-core downloads no browser.
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node check_page.mjs URL SCREENSHOT.png");
  process.exit(2);
}
const TIMEOUT_MS = Number(process.env.DEMO_PAGE_TIMEOUT_MS || 90000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // No sandbox: CI runs as root. The rest keeps Chromium off the network (no component updates,
  // no background fetches), so every request in the report is the page's own.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
  ],
});
const report = { requests: [], console_errors: [], page_errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on("request", (request) => report.requests.push(request.url()));
  page.on("console", (message) => {
    if (message.type() === "error") report.console_errors.push(message.text());
  });
  page.on("pageerror", (error) => report.page_errors.push(String(error)));

  await page.goto(url, { waitUntil: "load" });
  // The weight set's summary appears once the page has loaded it (the app's load event).
  await page.waitForFunction(() => {
    const summary = document.querySelector("#summary");
    return summary && /family/.test(summary.innerText);
  });
  report.summary = await page.locator("#summary").innerText();
  report.title = await page.title();

  // The model list: the dropdown's options, read by opening it.
  const modelInput = page.locator("#model input");
  report.model_value = await modelInput.inputValue();
  await modelInput.click();
  const options = page.locator("ul[role=listbox] li");
  await options.first().waitFor();
  report.models = await options.allInnerTexts();
  await page.keyboard.press("Escape");
  await page.locator("#header").click(); // close the list

  // Generate, then wait for a video that has decoded frames.
  await page.locator("#seed input").fill("7");
  await page.locator("#generate").click();
  await page.waitForFunction(() => {
    const video = document.querySelector("#clips video");
    return video && video.readyState >= 2 && video.videoWidth > 0;
  });
  await page.waitForFunction(() => /seed 7\b/.test(document.querySelector("#caption")?.innerText || ""));
  report.caption = await page.locator("#caption").innerText();
  report.video = await page.evaluate(async () => {
    const video = document.querySelector("#clips video");
    // Draw the frame on show and measure it: a blank (all one colour) video has no spread.
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const context = canvas.getContext("2d");
    context.drawImage(video, 0, 0);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    let sum = 0;
    let sumSq = 0;
    const n = data.length / 4;
    for (let i = 0; i < data.length; i += 4) {
      const gray = (data[i] + data[i + 1] + data[i + 2]) / 3;
      sum += gray;
      sumSq += gray * gray;
    }
    const mean = sum / n;
    const box = video.getBoundingClientRect();
    return {
      src: video.currentSrc,
      width: video.videoWidth,
      height: video.videoHeight,
      duration: video.duration,
      ready_state: video.readyState,
      paused: video.paused,
      pixel_mean: mean,
      pixel_std: Math.sqrt(Math.max(sumSq / n - mean * mean, 0)),
      shown_width: box.width,
      shown_height: box.height,
    };
  });
  report.downloads = await page.locator("#files").innerText();
  await page.mouse.move(0, 0); // no hover state in the picture
  await page.screenshot({ path: screenshot, fullPage: true });
  report.screenshot = screenshot;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
