// Encore web UI: boot.  The header follows the session; the router shows
// the page of the URL (routes.js).
import './styles/main.css';
import { start } from './lib/router.js';
import { session } from './lib/session.js';
import { renderHeader } from './header.js';
import routes from './routes.js';

const header = document.getElementById('site-header');
const main = document.getElementById('main');

renderHeader(header);
session.onChange(() => renderHeader(header));
// the page does not wait for the session unless it needs one (router.js)
session.load().catch(() => {});
start(routes, main);

// the header's link of the section shown now
function markCurrent() {
  const path = location.pathname;
  for (const a of header.querySelectorAll('.site-nav a')) {
    const href = a.getAttribute('href');
    const here = href === '/' ? path === '/' : path === href || path.startsWith(`${href}/`);
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}
document.addEventListener('encore:rendered', markCurrent);
session.onChange(markCurrent);
