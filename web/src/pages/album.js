import { h } from '../lib/dom.js';

export default {
  path: '/albums/:id',
  title: 'album',
  async render(main) {
    main.append(h('h1', null, 'album'));
  },
};
