// The README's "From a web page" snippet, as a page would use it: count a visit on a public
// counter (no key), show the value and keep the rate-limit figures scripts may read.
async function countVisit(api, workspace, name) {
  const response = await fetch(`${api}/v2/${workspace}/${name}/up`);
  const body = await response.json();
  if (response.ok) document.getElementById("visits").textContent = body.data.value;
  return {status: response.status, body, rateLimit: response.headers.get("RateLimit")};
}

function showBadge(api, workspace, name) {
  const img = document.getElementById("badge");
  return new Promise((resolve, reject) => {
    img.onload = () => resolve(img.naturalWidth);
    img.onerror = reject;
    img.src = `${api}/v2/${workspace}/${name}/badge.svg?label=visits&t=${Date.now()}`;
  });
}
