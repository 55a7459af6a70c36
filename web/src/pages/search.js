import { h } from '../lib/dom.js';

export default {
  path: '/search',
  title: 'search',
  async render(main) {
    main.append(h('h1', null, 'search'));
  },
};
