// Markdown to safe DOM: marked renders, DOMPurify sanitises.  Links keep
// only http(s), mailto and relative URLs and get rel="noopener nofollow
// ugc"; no script, style, event attribute, form or frame survives.
// Images become links (the CSP allows only this site's images).  With
// {links: 'same-origin'}, links (and so images) off this site become text.
import { Marked } from 'marked';
import DOMPurify from 'dompurify';

const SAFE_URL = /^(?:(?:https?|mailto):|[^:/?#]*(?:[/?#]|$))/i;

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    // a post's headings sit under the page's h1 and h2
    heading({ tokens, depth }) {
      const level = Math.min(depth + 2, 6);
      return `<h${level}>${this.parser.parseInline(tokens)}</h${level}>\n`;
    },
    image({ href, text }) {
      return `<a href="${escapeHtml(href || '')}">${escapeHtml(text || href || 'image')}</a>`;
    },
    // raw HTML in Markdown is shown as text, not interpreted
    html({ text }) {
      return escapeHtml(text);
    },
  },
});

const purify = DOMPurify(window);
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    const href = node.getAttribute('href');
    if (href !== null && !SAFE_URL.test(href.trim())) node.removeAttribute('href');
    node.setAttribute('rel', 'noopener nofollow ugc');
  }
});

const CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['img', 'style', 'form', 'input', 'button', 'textarea', 'select',
    'option', 'iframe', 'frame', 'object', 'embed', 'svg', 'math', 'video', 'audio',
    'source', 'picture', 'link', 'meta', 'base'],
  FORBID_ATTR: ['style', 'class', 'id', 'target', 'srcset'],
  ALLOWED_URI_REGEXP: SAFE_URL,
  RETURN_DOM_FRAGMENT: true,
};

function sameOrigin(href) {
  try {
    return new URL(href, window.location.href).origin === window.location.origin;
  } catch (e) {
    return false;
  }
}

// Every link of frag that leads off this site (or nowhere: its href was
// unsafe) becomes its text, followed by its address as text, so that
// nothing is hidden and nothing is clickable.  Images are links by now.
function unlinkOffSite(frag) {
  for (const a of Array.from(frag.querySelectorAll('a'))) {
    const raw = a.getAttribute('href');
    const href = raw === null ? '' : raw.trim();
    if (href !== '' && sameOrigin(href)) continue;
    const label = a.textContent.trim();
    const nodes = Array.from(a.childNodes);
    if (href !== '' && href !== label && href !== `mailto:${label}`) {
      const address = document.createElement('span');
      address.className = 'link-address';
      address.textContent = `(${href})`;
      nodes.push(document.createTextNode(' '), address);
    }
    a.replaceWith(...nodes);
  }
}

// text -> DocumentFragment, sanitised.  options.links: 'all' (the
// default: http(s), mailto and relative links) or 'same-origin' (only
// links to this site stay links: for text a model wrote, which others
// may have steered through what it read)
export function renderMarkdown(text, { links = 'all' } = {}) {
  const html = marked.parse(String(text || ''), { async: false });
  const frag = purify.sanitize(html, CONFIG);
  if (links === 'same-origin') unlinkOffSite(frag);
  return frag;
}

// a search snippet: HTML whose only markup is <mark> (everything else
// is escaped by the search worker; sanitised here all the same)
export function renderSnippet(html) {
  return purify.sanitize(String(html || ''), {
    ALLOWED_TAGS: ['mark'], ALLOWED_ATTR: [], RETURN_DOM_FRAGMENT: true,
  });
}
